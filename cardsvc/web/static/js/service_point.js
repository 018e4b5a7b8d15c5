/* Service-point tap screen: follow taps made at this point's terminal (`cardsvc tap`).
 * Polls the page's own endpoint (data-latest) every 2 s; when a newer verification than the one
 * the page was rendered with (data-seen) appears, opens it (the member, or the refusal). */
"use strict";
(function () {
  const screen = document.getElementById("tap-screen");
  if (!screen) return;
  const url = screen.dataset.latest;
  let seen = Number(screen.dataset.seen || 0);
  const PERIOD_MS = 2000;

  async function poll() {
    try {
      const response = await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}});
      if (response.redirected || !response.ok) return;  // signed out: the next page load shows the login
      const latest = await response.json();
      if (latest.seq > seen) {
        seen = latest.seq;
        location.assign(latest.url);
      }
    } catch (_error) {
      /* offline for a moment: try again on the next tick */
    }
  }
  setInterval(poll, PERIOD_MS);
})();
