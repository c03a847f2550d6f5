// The language picker: one select over every locale, used in the header and on the account screen.
import { LOCALES, locale, setLocale, type Locale } from "../i18n";

export function LanguageSelect({ id }: { id: string }) {
  return (
    <select id={id} value={locale.value} onChange={(e) => setLocale(e.currentTarget.value as Locale)}>
      {LOCALES.map((l) => (
        <option key={l.id} value={l.id}>
          {l.label}
        </option>
      ))}
    </select>
  );
}
