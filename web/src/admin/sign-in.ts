// The sign-in form: the master key, or an admin user's email and password. The key is
// read from the field, sent once, and the field is cleared; nothing is stored.
import { required } from "../elements";
import { session } from "./api";
import type { Session } from "./types";
import { showError, whileBusy } from "./ui";

export function askToSignIn(): Promise<Session> {
  const section = required("sign-in");
  const form = required<HTMLFormElement>("sign-in-form");
  const master = required<HTMLInputElement>("sign-in-master");
  const email = required<HTMLInputElement>("sign-in-email");
  const password = required<HTMLInputElement>("sign-in-password");
  const error = required("sign-in-error");
  const submit = required<HTMLButtonElement>("sign-in-submit");
  const way = () => (form.elements.namedItem("way") as RadioNodeList).value;
  const showWay = () => {
    required("master-fields").hidden = way() !== "master";
    required("user-fields").hidden = way() !== "user";
  };
  showWay();
  section.hidden = false;
  error.hidden = true;
  (way() === "master" ? master : email).focus();

  return new Promise((resolve) => {
    const onChange = () => showWay();
    const onSubmit = async (event: SubmitEvent) => {
      event.preventDefault();
      error.hidden = true;
      const credentials =
        way() === "master"
          ? { master_key: master.value.trim() }
          : { email: email.value.trim(), password: password.value };
      try {
        const started = await whileBusy(submit, "Signing in…", () => session.signIn(credentials));
        master.value = "";
        password.value = "";
        form.removeEventListener("submit", onSubmit);
        form.removeEventListener("change", onChange);
        section.hidden = true;
        resolve(started);
      } catch (problem) {
        showError(error, problem);
      }
    };
    form.addEventListener("change", onChange);
    form.addEventListener("submit", onSubmit);
  });
}
