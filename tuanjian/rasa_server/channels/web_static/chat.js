/* 智慧团建 团组织关系转接助手: chat page.
 *
 * Talks to the web channel on the same origin: a signed session token from
 * POST /webhooks/web/session, then POST /webhooks/web/webhook
 * {"session", "message", "message_id", "retry"} ->
 * [{"text", "buttons": [{"title", "payload"}]}], sent again on a 502/503/504.
 * Bot text is always inserted as text (textContent), never as HTML. The
 * conversation (session token and every message) lives in sessionStorage, so it
 * survives reloads within the tab's session and is gone when the tab closes.
 */
(function () {
  "use strict";

  var STORE_KEY = "tuanjian-webchat-v1";
  var WEBHOOK = "/webhooks/web/webhook";
  var NEW_SESSION = "/webhooks/web/session";
  var RESTART = "/webhooks/web/restart";
  // Replies a help-desk staff member wrote to this conversation (ticket open).
  var STAFF_INBOX = "/webhooks/staff/inbox";
  var SESSION_HEADER = "X-Chat-Session";
  var INBOX_EVERY_MS = 5000;
  var TIMEOUT_MS = 30000;
  // Waits before each new attempt at a message the server could not take.
  var RETRY_DELAYS_MS = [1000, 2000, 3000, 4000, 5000];
  var RETRY_STATUSES = [502, 503, 504];
  var GREET = "/greet";
  var NOTICE = {
    network: "抱歉，暂时连接不上助手，请检查网络后再试一次。",
    server: "抱歉，助手暂时无法回答，请稍后再试。",
    rejected: "抱歉，这条消息没能发送（可能过长或格式有误），请修改后再试。",
    noReply: "抱歉，助手没有给出回答，请换个说法再试一次。"
  };

  var log = document.getElementById("log");
  var typing = document.getElementById("typing");
  var form = document.getElementById("composer");
  var input = document.getElementById("input");
  var sendButton = document.getElementById("send");
  var restartButton = document.getElementById("restart");

  var busy = false;
  var generation = 0; // replies to a conversation cleared by 重新开始 are dropped

  /* ---------- storage ---------- */

  var storage = (function () {
    try {
      var probe = "__probe__";
      window.sessionStorage.setItem(probe, probe);
      window.sessionStorage.removeItem(probe);
      return window.sessionStorage;
    } catch (e) {
      return null; // storage disabled: the conversation lives in this page only
    }
  })();

  function isString(value) {
    return typeof value === "string";
  }

  function cleanButtons(buttons) {
    if (!Array.isArray(buttons)) return [];
    return buttons.filter(function (b) {
      return b && isString(b.title) && isString(b.payload) && b.title && b.payload;
    }).map(function (b) {
      return { title: b.title, payload: b.payload };
    });
  }

  function cleanMessage(m) {
    if (!m || (m.from !== "user" && m.from !== "bot") || !isString(m.text)) return null;
    var message = { from: m.from, text: m.text };
    if (m.from === "bot") message.buttons = cleanButtons(m.buttons);
    return message;
  }

  function load() {
    if (!storage) return null;
    try {
      var saved = JSON.parse(storage.getItem(STORE_KEY) || "null");
      if (!saved || !isString(saved.session) || !Array.isArray(saved.messages)) {
        return null;
      }
      return {
        session: saved.session,
        messages: saved.messages.map(cleanMessage).filter(Boolean)
      };
    } catch (e) {
      return null;
    }
  }

  function save() {
    if (!storage) return;
    try {
      storage.setItem(STORE_KEY, JSON.stringify(state));
    } catch (e) {
      /* quota exceeded or storage gone: keep chatting without saving */
    }
  }

  // The session token is issued by the server on the first message.
  var state = load() || { session: "", messages: [] };

  /* ---------- rendering ---------- */

  var stickToEnd = true; // follow new messages unless the member scrolled up to read

  function scrollToEnd() {
    log.scrollTop = log.scrollHeight;
    stickToEnd = true;
  }

  log.addEventListener("scroll", function () {
    stickToEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  });

  // Rotating the phone or opening its keyboard resizes the log: stay at the end.
  window.addEventListener("resize", function () {
    if (stickToEnd) scrollToEnd();
  });

  function appendNode(node) {
    if (typing.parentNode === log) {
      log.insertBefore(node, typing);
    } else {
      log.appendChild(node);
    }
  }

  function renderMessage(message, index) {
    var row = document.createElement("div");
    row.className = "msg " + message.from;
    row.setAttribute("data-index", String(index));

    if (message.text) {
      var bubble = document.createElement("div");
      bubble.className = "bubble";
      bubble.textContent = message.text;
      row.appendChild(bubble);
    }

    if (message.from === "bot" && message.buttons && message.buttons.length) {
      var chips = document.createElement("div");
      chips.className = "chips";
      chips.setAttribute("role", "group");
      chips.setAttribute("aria-label", "快捷回复");
      message.buttons.forEach(function (button) {
        var chip = document.createElement("button");
        chip.type = "button";
        chip.className = "chip";
        chip.textContent = button.title;
        chip.addEventListener("click", function () {
          if (chip.disabled) return;
          send(button.payload, button.title);
        });
        chips.appendChild(chip);
      });
      row.appendChild(chips);
    }
    appendNode(row);
  }

  function renderNotice(text) {
    var row = document.createElement("div");
    row.className = "msg notice";
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.setAttribute("role", "alert");
    bubble.textContent = text;
    row.appendChild(bubble);
    appendNode(row);
    scrollToEnd();
  }

  // Quick replies work only on the latest answer: chips of the bot messages
  // after the last user message are enabled, older ones are disabled.
  function updateChips() {
    var lastUser = -1;
    state.messages.forEach(function (m, i) {
      if (m.from === "user") lastUser = i;
    });
    var rows = log.querySelectorAll(".msg[data-index]");
    for (var r = 0; r < rows.length; r++) {
      var index = Number(rows[r].getAttribute("data-index"));
      var live = index > lastUser && !busy;
      var chips = rows[r].querySelectorAll(".chip");
      for (var c = 0; c < chips.length; c++) chips[c].disabled = !live;
    }
  }

  function addMessage(message) {
    state.messages.push(message);
    save();
    renderMessage(message, state.messages.length - 1);
  }

  function renderAll() {
    var rows = log.querySelectorAll(".msg");
    for (var i = 0; i < rows.length; i++) log.removeChild(rows[i]);
    state.messages.forEach(renderMessage);
    updateChips();
    scrollToEnd();
  }

  function setBusy(value) {
    busy = value;
    sendButton.disabled = value;
    if (value) {
      log.appendChild(typing);
      typing.hidden = false;
      log.setAttribute("aria-busy", "true");
    } else {
      typing.hidden = true;
      log.removeAttribute("aria-busy");
    }
    updateChips();
    scrollToEnd();
  }

  /* ---------- talking to the assistant ---------- */

  function request(url, body, timeoutMs) {
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, timeoutMs) : null;
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
      signal: controller ? controller.signal : undefined
    }).finally(function () {
      if (timer) clearTimeout(timer);
    });
  }

  function failure(status) {
    var error = new Error("HTTP " + status);
    error.status = status;
    error.notice = status >= 400 && status < 500 ? NOTICE.rejected : NOTICE.server;
    return error;
  }

  function readJson(response) {
    return response.json().catch(function () {
      throw Object.assign(new Error("bad JSON"), { notice: NOTICE.server });
    });
  }

  function newSession() {
    return request(NEW_SESSION, {}, TIMEOUT_MS).then(function (response) {
      if (!response.ok) throw failure(response.status);
      return readJson(response);
    }).then(function (body) {
      if (!body || !isString(body.session)) throw failure(500);
      state.session = body.session;
      save();
      return body.session;
    });
  }

  function session() {
    return state.session ? Promise.resolve(state.session) : newSession();
  }

  function newMessageId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return (b < 16 ? "0" : "") + b.toString(16);
    }).join("");
  }

  function wait(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  // A token the server no longer accepts (expired, or the server's secret
  // changed) is replaced once and the message sent again. A message the
  // server could not take (503: a store away or a turn stuck; 502/504 or no
  // answer: the replica went away) is sent again with the same message_id and
  // retry: true, so a turn that was taken is answered from the server's
  // record instead of being taken twice.
  function post(message, messageId, attempt, renewed, mine) {
    return session().then(function (token) {
      var body = { session: token, message: message, message_id: messageId, retry: attempt > 0 };
      return request(WEBHOOK, body, TIMEOUT_MS);
    }).then(function (response) {
      if (response.status === 401 && !renewed) {
        state.session = "";
        return post(message, messageId, attempt, true, mine);
      }
      if (RETRY_STATUSES.indexOf(response.status) >= 0) throw failure(response.status);
      // 429: too fast; the body is the assistant's polite reply.
      if (!response.ok && response.status !== 429) throw Object.assign(failure(response.status), { final: true });
      return readJson(response);
    }).catch(function (error) {
      // 重新开始 ended this conversation: its message is not sent into the new one.
      var over = mine !== generation;
      if (over || (error && error.final) || attempt >= RETRY_DELAYS_MS.length) throw error;
      return wait(RETRY_DELAYS_MS[attempt]).then(function () {
        if (mine !== generation) throw error;
        return post(message, messageId, attempt + 1, renewed, mine);
      });
    });
  }

  // Sends `message` to the assistant; `shown` is what the member sees as their
  // own message (a button's title for its payload), or null to send silently.
  function send(message, shown) {
    if (busy) return;
    var mine = generation;
    if (shown !== null) addMessage({ from: "user", text: shown });
    setBusy(true);
    post(message, newMessageId(), 0, false, mine).then(function (replies) {
      if (mine !== generation) return;
      if (!Array.isArray(replies)) throw Object.assign(new Error("not a list"), { notice: NOTICE.server });
      var shownAny = false;
      replies.forEach(function (reply) {
        if (!reply) return;
        var text = isString(reply.text) ? reply.text : "";
        var buttons = cleanButtons(reply.buttons);
        if (!text && !buttons.length) return;
        addMessage({ from: "bot", text: text, buttons: buttons });
        shownAny = true;
      });
      if (!shownAny && shown !== null) renderNotice(NOTICE.noReply);
    }).catch(function (error) {
      if (mine !== generation) return;
      renderNotice((error && error.notice) || NOTICE.network);
    }).finally(function () {
      if (mine !== generation) return;
      setBusy(false);
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text || busy) return;
    input.value = "";
    send(text, text);
  });

  restartButton.addEventListener("click", function () {
    generation += 1;
    // The server restarts the old conversation and ends its verification.
    if (state.session) request(RESTART, { session: state.session }, TIMEOUT_MS).catch(function () {});
    state = { session: "", messages: [] };
    save();
    setBusy(false);
    var notices = log.querySelectorAll(".msg");
    for (var i = 0; i < notices.length; i++) log.removeChild(notices[i]);
    send(GREET, null);
    input.focus();
  });

  function pollStaffReplies() {
    var mine = generation;
    if (!state.session) return;
    var headers = {};
    headers[SESSION_HEADER] = state.session;
    fetch(STAFF_INBOX, { credentials: "same-origin", headers: headers })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (mine !== generation || !body) return;
        var replies = Array.isArray(body) ? body : body.replies;
        (replies || []).forEach(function (text) {
          if (isString(text) && text) addMessage({ from: "bot", text: text, buttons: [] });
        });
      })
      .catch(function () { /* the next poll tries again */ });
  }
  setInterval(pollStaffReplies, INBOX_EVERY_MS);

  renderAll();
  if (!state.messages.length) {
    send(GREET, null); // first open: the welcome menu, without a message of the member's
  }
})();
