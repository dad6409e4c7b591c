// The signed-in user's availability in the top bar: online, away or offline, as they
// set it (PUT /v1/me/availability). Parley sets it offline when none of their pages has
// been connected for a while, so it is read again whenever the live stream comes back.
import * as api from "./api.js";
import { field, h, select } from "./el.js";
import { AVAILABILITY_EVENT } from "./team.js";

const CHOICES = [
  ["online", "Online"],
  ["away", "Away"],
  ["offline", "Offline"],
];

/** {node, refresh()}; `onError(message)` shows a failure. */
export function availabilityControl({ onError }) {
  const choice = select(CHOICES, "offline", {
    onchange: async () => {
      choice.disabled = true;
      try {
        show(await api.request("PUT", "/v1/me/availability", { status: choice.value }));
        document.dispatchEvent(new CustomEvent(AVAILABILITY_EVENT)); // the team list shows it
      } catch (error) {
        onError(error.message);
        await refresh();
      } finally {
        choice.disabled = false;
      }
    },
  });
  const node = field("Availability", choice, { inline: true });

  function show(current) {
    choice.value = current.status;
    node.dataset.status = current.status;
  }

  async function refresh() {
    try {
      show(await api.get("/v1/me/availability"));
    } catch {
      // shown as it was: the next reconnect reads it again
    }
  }

  return { node, refresh };
}
