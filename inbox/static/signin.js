// Sign in once with a user's token: the API answers with an HttpOnly session cookie
// and a CSRF token. The token is then dropped from the page.
import * as api from "./api.js";
import { field, h } from "./el.js";

/** Renders the sign-in form into `root`; calls onSignedIn({user, csrf}). */
export function showSignIn(root, { message = "", onSignedIn }) {
  // A text field masked by CSS (not type=password): it keeps the textbox role that
  // assistive technology and the browser tests find it by, and browsers do not offer
  // to save it as a password.
  const token = h("input", {
    type: "text",
    class: "secret",
    autocomplete: "off",
    autocapitalize: "off",
    spellcheck: "false",
    required: true,
  });
  const status = h("p", { class: "form-error", role: "alert" }, message);
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Parley inbox"),
    h("p", {}, "Sign in with the token an admin gave you. It is used once: the page then keeps a session that ends when you sign out."),
    field("Token", token),
    button,
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = token.value.trim();
    if (!value) {
      status.textContent = "Paste your token first.";
      token.focus();
      return;
    }
    button.disabled = true;
    status.textContent = "";
    try {
      const session = await api.post(api.SESSION, { token: value });
      token.value = "";
      form.remove();
      onSignedIn(session);
    } catch (error) {
      status.textContent =
        error.status === 401 ? "That token signs nobody in: check it and try again." : error.message;
      button.disabled = false;
      token.focus();
    }
  });
  root.replaceChildren(h("main", { class: "signin-page" }, form));
  token.focus();
}
