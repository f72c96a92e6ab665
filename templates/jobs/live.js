/* What the dashboard's pages share to update themselves in place from their JSON, without a
   reload: the scroll position stays, and keyboard focus stays where it was. */
const Live = (() => {
  "use strict";
  const text = (node, value) => { if (node && node.textContent !== value) node.textContent = value; };
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function getJson(url) {
    const response = await fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"});
    // A lapsed login answers with the login page: a redirect, not data.
    if (response.redirected || !response.ok) throw new Error("HTTP " + response.status);
    return response.json();
  }

  function badge(status, label, title) {
    const span = document.createElement("span");
    span.className = "badge s-" + status;
    span.textContent = label || status;
    if (title) span.title = title;
    return span;
  }

  // Runs change(), which may move nodes, and gives focus back to the element that had it.
  function keepingFocus(change) {
    const focused = document.activeElement;
    const result = change();
    if (focused && focused !== document.body && focused.isConnected && document.activeElement !== focused) {
      focused.focus({preventScroll: true});
    }
    return result;
  }

  // Loads url every `every` ms and hands the data to render(), until render() returns false.
  // Each good load sets the page's "Updated" line (#updated) from data.updated and marks
  // body[data-refreshed]; a failed one is said in #live and tried again at the next turn.
  function poll(url, every, render) {
    const live = document.getElementById("live");
    const updated = document.getElementById("updated");
    let timer = null;
    let failing = false;
    async function refresh() {
      clearTimeout(timer);
      let again = true;
      try {
        const data = await getJson(url);
        again = keepingFocus(() => render(data)) !== false;
        text(updated, data.updated);
        if (failing) text(live, "");
        failing = false;
        document.body.dataset.refreshed = String(Date.now());
      } catch (error) {
        failing = true;
        text(live, "Could not refresh (" + error.message + "); retrying.");
      }
      if (again) timer = setTimeout(refresh, every);
    }
    timer = setTimeout(refresh, every);
    return refresh;
  }

  return {text, sleep, getJson, badge, keepingFocus, poll};
})();
