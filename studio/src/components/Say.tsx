// A message as the user reads it: the headline in their language and, under it, the server's own
// sentence, marked as English (it names the exact field or number).
import { shown, type Message } from "../i18n";
import { Rich } from "./Rich";

export function Say({ message, atField }: { message: Message; atField?: boolean }) {
  const { headline, detail } = shown(message, atField);
  if (!detail) return <Rich text={headline ?? ""} />;
  return (
    <>
      {headline && (
        <span class="message-headline">
          <Rich text={headline} />
        </span>
      )}
      <span class="message-detail" lang="en">
        <Rich text={detail} />
      </span>
    </>
  );
}
