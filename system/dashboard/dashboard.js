// The Squall dashboard: live prices, signals, health, and the trading desk — its halt (the
// kill switch), orders, positions and P&L — from the gateway it is served by. Plain script,
// no build step. The /ws protocol is documented in system/gateway/protocol.py,
// /api/kill-switch in system/gateway/kill_switch.py, /api/trading in system/gateway/trading.py.
"use strict";

(() => {
  const STORAGE_KEY = "squall.tickers";
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_MAX_MS = 30000;
  const HEALTH_EVERY_MS = 5000;
  // /api/trading: the halt, orders, positions and P&L, read together so they agree.
  const TRADING_EVERY_MS = 1000;
  const MAX_SIGNALS = 50;

  // Escaped: test ids hold tickers, and a ?tickers= link may carry any text.
  const $ = (testid) => document.querySelector(`[data-testid="${CSS.escape(testid)}"]`);
  const el = {
    state: $("connection-state"),
    stale: $("stale-badge"),
    error: $("error-message"),
    errorText: $("error-text"),
    errorDismiss: $("error-dismiss"),
    form: $("subscribe-form"),
    input: $("ticker-input"),
    rows: $("price-rows"),
    pricesEmpty: $("prices-empty"),
    signals: $("signals-list"),
    signalsEmpty: $("signals-empty"),
    clientId: $("client-id"),
    feedDetail: $("feed-detail"),
    healthOverall: $("health-overall"),
    healthParts: { gateway: $("health-gateway"), broker: $("health-broker"), feed: $("health-feed") },
    healthReasons: $("health-reasons"),
    haltState: $("halt-state"),
    haltDetail: $("halt-detail"),
    killForm: $("kill-switch-form"),
    operatorToken: $("operator-token"), // its value is the only place the token is kept
    haltReason: $("halt-reason"),
    killSwitch: $("kill-switch"),
    tradingMode: $("trading-mode"),
    pnl: $("pnl"),
    pnlRealisedToday: $("pnl-realised-today"),
    pnlRealisedTotal: $("pnl-realised-total"),
    pnlUnrealised: $("pnl-unrealised"),
    tradingDetail: $("trading-detail"),
    positionsCard: $("positions-card"),
    positionRows: $("position-rows"),
    positionsEmpty: $("positions-empty"),
    ordersCard: $("orders-card"),
    orderRows: $("order-rows"),
    ordersEmpty: $("orders-empty"),
  };

  const numbers = new Intl.NumberFormat("ko-KR");
  const state = {
    socket: null,
    connected: false,
    attempt: 0, // reconnection attempts since the last successful connection
    retryTimer: null,
    countdown: null,
    watchdog: null,
    heartbeatMs: 15000,
    feedStale: false,
    tickers: loadTickers(), // what the user asked for; restored on every (re)connection
    engaged: null, // the kill switch as last read: true, false, or null (unknown / no desk)
    switching: false, // a POST /api/kill-switch is under way
    tradingShown: "", // the orders and positions on the page, as JSON: redrawn only on change
    tradingReadAt: null, // when /api/trading last answered
  };

  // -- connection --------------------------------------------------------------------------

  function connect() {
    clearTimeout(state.retryTimer);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws`);
    state.socket = socket;
    socket.addEventListener("message", (event) => {
      if (socket !== state.socket) return;
      armWatchdog();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      handle(message);
    });
    socket.addEventListener("close", (event) => {
      if (socket !== state.socket) return;
      state.socket = null;
      state.connected = false;
      clearTimeout(state.watchdog);
      // Without a connection no price on the page moves any more: say so, until a fresh
      // price arrives (dataset.stale: a feed_status after reconnecting keeps the mark).
      for (const row of el.rows.children) {
        row.dataset.stale = "true";
        markStale(row.dataset.ticker, true);
      }
      el.feedDetail.textContent = "";
      scheduleReconnect(event);
      pollHealth();
    });
  }

  function scheduleReconnect(event) {
    state.attempt += 1;
    // Exponential backoff with jitter, so a restarted gateway is not hit by every page at once.
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (state.attempt - 1));
    const delay = Math.round(base * (0.5 + Math.random() * 0.5));
    const why = event && event.code && event.code !== 1006 ? ` — closed ${event.code}${event.reason ? `: ${event.reason}` : ""}` : "";
    const retryAt = Date.now() + delay;
    const show = () => {
      const seconds = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
      setConnectionState("reconnecting", `Reconnecting in ${seconds} s (attempt ${state.attempt})${why}`);
    };
    show();
    el.state.dataset.attempt = String(state.attempt);
    clearInterval(state.countdown);
    state.countdown = setInterval(show, 1000);
    state.retryTimer = setTimeout(() => {
      clearInterval(state.countdown);
      setConnectionState("reconnecting", `Reconnecting… (attempt ${state.attempt})${why}`);
      connect();
    }, delay);
  }

  // A gateway that stopped answering sends no pings: give up on the socket after 2.5
  // heartbeats of silence and reconnect, rather than show prices that no longer move.
  function armWatchdog() {
    clearTimeout(state.watchdog);
    state.watchdog = setTimeout(() => {
      if (state.socket) state.socket.close(4000, "no heartbeat from the gateway");
    }, state.heartbeatMs * 2.5);
  }

  function send(message) {
    if (state.socket && state.socket.readyState === WebSocket.OPEN) {
      state.socket.send(JSON.stringify(message));
    }
  }

  function setConnectionState(name, text) {
    el.state.dataset.state = name;
    el.state.textContent = text;
  }

  function showConnection() {
    if (!state.connected) return;
    if (state.feedStale) setConnectionState("stale", "Connected · prices stale");
    else setConnectionState("connected", "Connected");
  }

  // -- messages ----------------------------------------------------------------------------

  function handle(message) {
    switch (message.type) {
      case "connected":
        state.connected = true;
        state.attempt = 0;
        delete el.state.dataset.attempt;
        if (message.heartbeat_interval_s) state.heartbeatMs = message.heartbeat_interval_s * 1000;
        el.clientId.textContent = message.client_id;
        showConnection();
        for (const ticker of state.tickers) send({ type: "subscribe", ticker });
        // The gateway replays its recent signals to every new subscriber: start the list
        // afresh rather than show those twice.
        el.signals.replaceChildren();
        el.signalsEmpty.hidden = false;
        send({ type: "subscribe", topic: "signals" });
        break;
      case "ping":
        send({ type: "pong", ts: message.ts });
        break;
      case "feed_status":
        state.feedStale = Boolean(message.stale);
        el.stale.hidden = !state.feedStale;
        el.feedDetail.textContent = `Feed ${message.state}${message.detail ? ` — ${message.detail}` : ""}` +
          (message.reconnects ? ` · ${message.reconnects} reconnect(s)` : "");
        for (const row of el.rows.children) markStale(row.dataset.ticker, state.feedStale || row.dataset.stale === "true");
        showConnection();
        break;
      case "subscribed":
        if (message.ticker) addTicker(message.ticker);
        break;
      case "unsubscribed":
        if (message.ticker) removeRow(message.ticker);
        break;
      case "price_update":
        showPrice(message.ticker, message.data);
        break;
      case "signal":
        showSignal(message);
        break;
      case "error":
        showError(message.message, message.code);
        break;
      default:
        break;
    }
  }

  // -- prices ------------------------------------------------------------------------------

  function addTicker(ticker) {
    if (!state.tickers.includes(ticker)) {
      state.tickers.push(ticker);
      saveTickers();
    }
    rowFor(ticker);
  }

  function rowFor(ticker) {
    const existing = $(`price-row-${ticker}`);
    if (existing) return existing;
    const row = document.createElement("tr");
    row.dataset.testid = `price-row-${ticker}`;
    row.dataset.ticker = ticker;
    row.append(
      cell("ticker", ticker),
      cell("num price", "—", `price-${ticker}`),
      cell("num", "", `change-${ticker}`),
      cell("num muted col-volume", "", `volume-${ticker}`),
      cell("muted", "waiting…", `time-${ticker}`),
      sourceCell(ticker),
      removeCell(ticker),
    );
    el.rows.append(row);
    el.pricesEmpty.hidden = true;
    return row;
  }

  function cell(className, text, testid) {
    const td = document.createElement("td");
    td.className = className;
    td.textContent = text;
    if (testid) td.dataset.testid = testid;
    return td;
  }

  function sourceCell(ticker) {
    const td = document.createElement("td");
    const source = document.createElement("span");
    source.className = "tag";
    source.dataset.testid = `source-${ticker}`;
    source.textContent = "—";
    const stale = document.createElement("span");
    stale.className = "tag tag-stale";
    stale.dataset.testid = `stale-${ticker}`;
    stale.textContent = "stale";
    stale.hidden = true;
    td.append(source, stale);
    return td;
  }

  function removeCell(ticker) {
    const td = document.createElement("td");
    td.className = "num";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "remove";
    button.dataset.testid = `unsubscribe-${ticker}`;
    button.title = `Stop following ${ticker}`;
    button.textContent = "×";
    button.addEventListener("click", () => {
      send({ type: "unsubscribe", ticker });
      removeRow(ticker);
    });
    td.append(button);
    return td;
  }

  function removeRow(ticker) {
    state.tickers = state.tickers.filter((t) => t !== ticker);
    saveTickers();
    const row = $(`price-row-${ticker}`);
    if (row) row.remove();
    el.pricesEmpty.hidden = el.rows.children.length > 0;
  }

  function showPrice(ticker, data) {
    if (!state.tickers.includes(ticker)) return;
    const row = rowFor(ticker);
    $(`price-${ticker}`).textContent = numbers.format(data.price);
    const change = $(`change-${ticker}`);
    const sign = data.change > 0 ? "+" : "";
    const rate = data.change_rate === null ? "" : ` (${sign}${data.change_rate.toFixed(2)}%)`;
    change.textContent = `${sign}${numbers.format(data.change)}${rate}`;
    change.className = `num ${data.change > 0 ? "up" : data.change < 0 ? "down" : "muted"}`;
    $(`volume-${ticker}`).textContent = numbers.format(data.volume);
    // The time the page received it: the gateway's "at" is its loop clock, not wall time.
    $(`time-${ticker}`).textContent = new Date().toLocaleTimeString([], { hour12: false });
    $(`source-${ticker}`).textContent = data.source === "rest" ? "REST" : "feed";
    row.dataset.stale = String(Boolean(data.stale));
    markStale(ticker, Boolean(data.stale));
    row.classList.remove("flash");
    void row.offsetWidth; // restart the animation
    row.classList.add("flash");
  }

  function markStale(ticker, stale) {
    const row = $(`price-row-${ticker}`);
    if (!row) return;
    row.classList.toggle("is-stale", stale);
    $(`stale-${ticker}`).hidden = !stale;
  }

  // -- signals, errors, health -------------------------------------------------------------

  function showSignal(message) {
    const item = document.createElement("li");
    item.dataset.testid = "signal-item";
    const head = document.createElement("div");
    head.className = "signal-head";
    const kind = document.createElement("span");
    kind.className = "signal-kind";
    kind.textContent = message.kind;
    const time = document.createElement("span");
    time.className = "muted";
    time.textContent = new Date().toLocaleTimeString([], { hour12: false });
    head.append(kind, time);
    item.append(head, signalBody(message.data));
    el.signals.prepend(item);
    while (el.signals.children.length > MAX_SIGNALS) el.signals.lastElementChild.remove();
    el.signalsEmpty.hidden = true;
  }

  // An object's fields as a two-column list (nested values as compact JSON); anything
  // else as JSON text.
  function signalBody(data) {
    if (data === null || typeof data !== "object" || Array.isArray(data)) {
      const pre = document.createElement("pre");
      pre.className = "signal-body";
      pre.textContent = JSON.stringify(data);
      return pre;
    }
    const list = document.createElement("dl");
    list.className = "signal-fields";
    for (const [key, value] of Object.entries(data)) {
      const dt = document.createElement("dt");
      dt.textContent = key;
      const dd = document.createElement("dd");
      dd.textContent = typeof value === "string" ? value : JSON.stringify(value);
      list.append(dt, dd);
    }
    return list;
  }

  function showError(text, code) {
    el.errorText.textContent = text;
    el.error.dataset.code = code || "";
    el.error.hidden = false;
  }

  async function pollHealth() {
    try {
      const response = await fetch("/health", { cache: "no-store" });
      const health = await response.json();
      setHealth(el.healthOverall, health.state);
      for (const [part, node] of Object.entries(el.healthParts)) setHealth(node, health[part].state);
      el.healthReasons.replaceChildren(...health.reasons.map((reason) => {
        const li = document.createElement("li");
        li.textContent = reason;
        return li;
      }));
    } catch {
      setHealth(el.healthOverall, "unreachable");
      for (const node of Object.values(el.healthParts)) setHealth(node, "unknown");
      el.healthReasons.replaceChildren();
    }
  }

  function setHealth(node, value) {
    node.dataset.state = value;
    node.textContent = value;
  }

  // -- the trading desk: halt (kill switch), orders, positions, P&L -----------------------

  async function pollTrading() {
    let response;
    let body = null;
    try {
      response = await fetch("/api/trading", { cache: "no-store" });
      body = await response.json();
    } catch {
      showHalt(null, response ? "unknown" : "unreachable");
      showTradingStale(response ? `the gateway answered ${response.status}` : "the gateway is unreachable");
      return;
    }
    if (response.status === 404) {
      showHalt(null, "absent");
      showTrading(null);
    } else if (response.ok) {
      showHalt(body.halt);
      showTrading(body);
    } else {
      showHalt(null, "unknown");
      showTradingStale(`the gateway answered ${response.status}`);
    }
  }

  // ``trading``: the body of GET /api/trading; null when the system runs no trading desk.
  function showTrading(trading) {
    const absent = !trading;
    el.pnl.hidden = absent;
    el.positionsCard.hidden = absent;
    el.ordersCard.hidden = absent;
    el.positionsCard.dataset.stale = "false";
    el.ordersCard.dataset.stale = "false";
    if (absent) {
      el.tradingDetail.textContent = "";
      return;
    }
    state.tradingReadAt = new Date();
    el.tradingMode.textContent = trading.mode;
    el.tradingMode.dataset.mode = trading.mode;
    showMoney(el.pnlRealisedToday, trading.pnl.realised_today);
    showMoney(el.pnlRealisedTotal, trading.pnl.realised_total);
    showMoney(el.pnlUnrealised, trading.pnl.unrealised);
    el.tradingDetail.textContent = trading.mode === "paper" ? "Paper mode: every signal is evaluated, no order is sent." : "";
    const shown = JSON.stringify([trading.positions, trading.orders]);
    if (shown === state.tradingShown) return; // nothing moved: keep the rows (and any selection)
    state.tradingShown = shown;
    el.positionRows.replaceChildren(...trading.positions.map(positionRow));
    el.positionsEmpty.hidden = trading.positions.length > 0;
    el.orderRows.replaceChildren(...trading.orders.map(orderRow));
    el.ordersEmpty.hidden = trading.orders.length > 0;
  }

  // The last answer stays on the page, marked as old, while the gateway cannot be read.
  function showTradingStale(why) {
    if (el.ordersCard.hidden) return;
    el.positionsCard.dataset.stale = "true";
    el.ordersCard.dataset.stale = "true";
    const since = state.tradingReadAt ? ` since ${state.tradingReadAt.toLocaleTimeString([], { hour12: false })}` : "";
    el.tradingDetail.textContent = `Orders, positions and P&L not refreshed${since}: ${why}.`;
  }

  function positionRow(position) {
    const code = position.code;
    const row = document.createElement("tr");
    row.dataset.testid = `position-row-${code}`;
    row.dataset.code = code;
    const unrealised = cell("num", "", `position-unrealised-${code}`);
    showMoney(unrealised, position.unrealised);
    row.append(
      cell("ticker", code),
      cell("num", numbers.format(position.quantity), `position-quantity-${code}`),
      cell("num muted", numbers.format(position.average_price), `position-average-${code}`),
      cell("num", wonOrDash(position.last_price), `position-last-${code}`),
      cell("num", wonOrDash(position.market_value), `position-value-${code}`),
      unrealised,
    );
    return row;
  }

  function orderRow(order) {
    const row = document.createElement("tr");
    row.dataset.testid = "order-row";
    row.dataset.orderId = order.client_order_id;
    row.dataset.status = order.status;
    const id = cell("order-id", order.client_order_id, "order-id");
    id.title = order.client_order_id;
    const status = document.createElement("td");
    const tag = document.createElement("span");
    tag.className = "tag tag-status";
    tag.dataset.status = order.status;
    tag.dataset.testid = "order-status";
    tag.textContent = order.status;
    status.append(tag);
    const about = [order.odno, order.reason].filter((part) => part).join(" · ");
    row.append(
      id,
      cell(`order-side side-${order.side}`, order.side, "order-side"),
      cell("ticker", order.code, "order-code"),
      cell("num", numbers.format(order.quantity), "order-quantity"),
      cell("num muted", order.price === null ? "market" : numbers.format(order.price), "order-price"),
      status,
      cell("muted order-about", about || "—", "order-about"),
    );
    return row;
  }

  function wonOrDash(value) {
    return value === null || value === undefined ? "—" : numbers.format(value);
  }

  // A P&L figure: signed, red for a gain and blue for a loss (the KRX colours); "—" unknown.
  function showMoney(node, value) {
    if (value === null || value === undefined) {
      node.textContent = "—";
      node.classList.remove("up", "down");
      return;
    }
    node.textContent = `${value > 0 ? "+" : ""}${numbers.format(value)}`;
    node.classList.toggle("up", value > 0);
    node.classList.toggle("down", value < 0);
  }

  // ``halt``: the body of GET /api/kill-switch; null with ``why`` when it cannot be known.
  function showHalt(halt, why) {
    if (!halt) {
      state.engaged = null;
      el.haltState.dataset.state = why;
      el.haltState.textContent = why === "absent" ? "no trading desk" : why;
      el.haltDetail.textContent = why === "absent" ? "This system runs no trading desk: there is nothing to halt." : "";
      el.killForm.hidden = why === "absent";
      el.killSwitch.disabled = true;
      return;
    }
    state.engaged = Boolean(halt.engaged);
    el.haltState.dataset.state = state.engaged ? "halted" : "running";
    el.haltState.textContent = state.engaged ? "halted" : "running";
    el.haltDetail.textContent = state.engaged
      ? `${halt.reason} (${halt.automatic ? "automatic" : "by hand"}): ${halt.detail}. No order is sent until it is released.`
      : "";
    const action = state.engaged ? "release" : "engage";
    el.killForm.hidden = false;
    el.killForm.dataset.action = action;
    el.killSwitch.dataset.action = action;
    el.killSwitch.textContent = state.engaged ? "Resume trading" : "Halt trading";
    el.killSwitch.disabled = state.switching;
  }

  el.killForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (state.engaged === null || state.switching) return;
    // Read from the field at each click, sent in this one request, and never stored.
    const token = el.operatorToken.value.trim();
    if (!token) {
      showError("Enter the operator token (SQUALL_GATEWAY_OPERATOR_TOKEN) to halt or resume trading.", "operator_token_missing");
      el.operatorToken.focus();
      return;
    }
    const reason = el.haltReason.value.trim();
    const command = state.engaged ? { engaged: false } : reason ? { engaged: true, detail: reason } : { engaged: true };
    state.switching = true;
    el.killSwitch.disabled = true;
    try {
      const response = await fetch("/api/kill-switch", {
        method: "POST",
        cache: "no-store",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
        body: JSON.stringify(command),
      });
      let body = null;
      try {
        body = await response.json();
      } catch {
        // An answer without JSON (a proxy's error page): the status says enough.
      }
      if (response.ok && body) {
        el.haltReason.value = "";
        // An earlier refusal of the switch is answered now; other errors stay up.
        if (/^(kill_switch_|operator_token_)/.test(el.error.dataset.code || "")) el.error.hidden = true;
        showHalt(body);
      } else {
        const what = command.engaged ? "halted" : "resumed";
        showError(body && body.error ? body.error : `Trading was not ${what}: the gateway answered ${response.status}.`, `kill_switch_${response.status}`);
      }
    } catch {
      showError("Could not reach the gateway: the kill switch was not set. Try again.", "kill_switch_unreachable");
    } finally {
      state.switching = false;
      pollTrading();
    }
  });

  // -- input and storage -------------------------------------------------------------------

  el.form.addEventListener("submit", (event) => {
    event.preventDefault();
    const ticker = el.input.value.trim();
    if (!ticker) return;
    if (!state.connected) {
      showError(`Not connected to the gateway, so ${ticker} was not subscribed: try again once the status shows Connected.`, "not_connected");
      return;
    }
    // The gateway validates and answers with an error the banner shows; the page does not
    // second-guess it.
    send({ type: "subscribe", ticker });
    el.input.value = "";
  });
  el.errorDismiss.addEventListener("click", () => {
    el.error.hidden = true;
  });

  function loadTickers() {
    try {
      const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || "[]");
      return Array.isArray(saved) ? saved.filter((t) => typeof t === "string") : [];
    } catch {
      return [];
    }
  }

  function saveTickers() {
    try {
      localStorage.setItem(STORAGE_KEY, JSON.stringify(state.tickers));
    } catch {
      // Private windows may refuse storage; the page works without it.
    }
  }

  // ?tickers=005930,000660 adds tickers (a link that opens the page on a watch list).
  const linked = new URLSearchParams(location.search).get("tickers");
  if (linked) {
    for (const ticker of linked.split(",").map((t) => t.trim()).filter(Boolean)) {
      if (!state.tickers.includes(ticker)) state.tickers.push(ticker);
    }
  }

  for (const ticker of state.tickers) rowFor(ticker);
  connect();
  pollHealth();
  setInterval(pollHealth, HEALTH_EVERY_MS);
  pollTrading();
  setInterval(pollTrading, TRADING_EVERY_MS);
})();
