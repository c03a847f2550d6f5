import { Fragment } from "preact";

/** Text whose `backticked` parts are commands: shown as code, so they can be read and copied. */
export function Rich({ text }: { text: string }) {
  return (
    <>
      {text
        .split("`")
        .map((part, i) => (i % 2 ? <code key={i}>{part}</code> : <Fragment key={i}>{part}</Fragment>))}
    </>
  );
}
