// The unlock form of a password-protected share: posts the password to the share's page (PostHog's unlock,
// `{"password"}` → `{"shareToken": <JWT>}`), then opens the page with that JWT as `sharing_access_token`, so
// that the page and its stream work where the cookie set by the unlock is not sent (a cross-site iframe).
// Text only: messages are written with textContent.

const MESSAGES = {
  401: "Incorrect password",
  429: "Too many attempts. Wait a minute, then try again.",
};

function showError(form, text) {
  const box = form.querySelector(".tc-form-error");
  box.textContent = text;
  box.hidden = false;
  form.dataset.state = "error";
}

export function start(form = document.getElementById("tilecast-unlock")) {
  if (!form) return;
  const input = form.querySelector('input[name="password"]');
  const button = form.querySelector('button[type="submit"]');
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    form.dataset.state = "checking";
    const action = form.getAttribute("action") || window.location.pathname;
    try {
      const response = await fetch(action, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ password: input.value }),
        credentials: "same-origin",
      });
      let body = {};
      try {
        body = await response.json();
      } catch {
        body = {};
      }
      if (response.ok && typeof body.shareToken === "string") {
        form.dataset.state = "unlocked";
        const next = new URL(action, window.location.href);
        next.searchParams.set("sharing_access_token", body.shareToken);
        window.location.replace(next.pathname + next.search);
        return;
      }
      const text = MESSAGES[response.status] || (typeof body.error === "string" ? body.error : "");
      showError(form, text || `The password could not be checked (${response.status}).`);
    } catch {
      showError(form, "The password could not be checked: the server did not answer.");
    } finally {
      button.disabled = false;
    }
    input.select();
  });
}

start();
