// The change-password form's rules, checked before anything is sent (the server checks them again),
// and the mapping from the server's refusal ("current_password: …", "password: …") to the field.
import type { Message } from "../i18n";

export const MIN_PASSWORD = 8;
export const MAX_PASSWORD = 256;

export type PasswordField = "current" | "next" | "repeat";
export interface PasswordForm {
  current: string;
  next: string;
  repeat: string;
}
export type PasswordErrors = Partial<Record<PasswordField, Message>>;

/** What is wrong with the form, field by field; empty when it may be sent. */
export function checkPasswordForm(
  form: PasswordForm,
  { name, needsCurrent }: { name: string; needsCurrent: boolean },
): PasswordErrors {
  const errors: PasswordErrors = {};
  if (needsCurrent && !form.current) errors.current = { key: "password.currentRequired" };
  if (form.next.length < MIN_PASSWORD) {
    errors.next = { key: "password.tooShort", params: { min: MIN_PASSWORD } };
  } else if (form.next.length > MAX_PASSWORD) {
    errors.next = { key: "password.tooLong", params: { max: MAX_PASSWORD } };
  } else if (!form.next.trim()) {
    errors.next = { key: "password.blank" };
  } else if (name && form.next.toLowerCase() === name.toLowerCase()) {
    errors.next = { key: "password.isName" };
  }
  if (!errors.next && form.repeat !== form.next) errors.repeat = { key: "password.mismatch" };
  return errors;
}

/** The field a 400 / 1201 message is about, or null when it concerns the form as a whole. */
export function passwordFieldOf(message: string): PasswordField | null {
  const name = /^([a-z_]+):/.exec(message.trim())?.[1];
  if (name === "current_password") return "current";
  if (name === "new_password" || name === "password") return "next";
  return null;
}
