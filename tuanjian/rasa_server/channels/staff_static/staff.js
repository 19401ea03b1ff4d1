/* Staff help desk on /webhooks/staff/ (the JSON API of tuanjian/rasa_server/channels/staff.py).
 * The token is typed by the staff member and kept in sessionStorage (gone when
 * the tab closes); every text from the server goes into the page through
 * textContent only. */
(function () {
  "use strict";

  var API = "/webhooks/staff";
  var KEY = "staffToken";
  var MAX = 2000;
  var REASONS = { request_human: "成员要求转人工", fallbacks: "连续两次未识别", not_helpful: "成员表示回答没有帮助" };
  var WHO = { member: "成员", bot: "助手", staff: "客服" };
  var CHANNELS = { wechat: "微信公众号", rest: "网页 / REST", web: "网页" };
  var WHY = { fallback: "未识别", low_confidence: "把握不大", rated_down: "被评为没帮助", ticket: "转了人工" };
  var OUT_OF_SCOPE = "out_of_scope";
  var intents = []; // [{name, title}] from the inbox

  var $ = function (id) { return document.getElementById(id); };
  var current = null; // the ticket id shown

  function store() {
    try { return window.sessionStorage; } catch (e) { return null; }
  }
  function token() { var s = store(); return (s && s.getItem(KEY)) || ""; }
  function setToken(value) {
    var s = store();
    if (!s) { return; }
    if (value) { s.setItem(KEY, value); } else { s.removeItem(KEY); }
  }

  function say(text, ok) {
    var status = $("status");
    status.textContent = text || "";
    status.className = ok ? "status ok" : "status";
  }

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (cls) { node.className = cls; }
    return node;
  }

  function time(iso) {
    if (!iso) { return ""; }
    var d = new Date(iso);
    return isNaN(d.getTime()) ? String(iso) : d.toLocaleString("zh-CN", { hour12: false });
  }

  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }

  function request(method, path, body) {
    var options = { method: method, headers: { Authorization: "Bearer " + token() }, cache: "no-store" };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(API + path, options).then(function (reply) {
      return reply.json().catch(function () { return {}; }).then(function (data) {
        if (reply.status === 401) { logout("令牌无效，请重新输入。"); }
        if (!reply.ok) {
          var error = new Error(data.reason || data.error || ("HTTP " + reply.status));
          error.status = reply.status;
          throw error;
        }
        return data;
      });
    });
  }

  function failed(error) {
    if (error.status !== 401) { say("操作失败：" + error.message); }
  }

  function showDesk(on) {
    $("login").hidden = on;
    $("views").hidden = !on;
    showView(on ? "desk" : null);
  }

  function showView(name) {
    $("desk").hidden = name !== "desk";
    $("inbox").hidden = name !== "inbox";
    $("show-desk").setAttribute("aria-pressed", String(name === "desk"));
    $("show-inbox").setAttribute("aria-pressed", String(name === "inbox"));
  }

  // -- the review inbox --------------------------------------------------------

  function intentLabel(name) {
    for (var i = 0; i < intents.length; i++) {
      if (intents[i].name === name) { return intents[i].title ? intents[i].title + "（" + name + "）" : name; }
    }
    return name;
  }

  function loadInbox() {
    return request("GET", "/review").then(function (data) {
      intents = data.intents;
      var groups = $("groups");
      clear(groups);
      $("inbox-empty").hidden = data.total > 0;
      $("inbox-count").textContent = data.total ? "（" + data.total + " 种说法待复核" +
        (data.shown < data.total ? "，显示最新的 " + data.shown + " 种" : "") + "）" : "";
      if (data.unread > 0) { say("还有较早的对话没有读完，请稍后刷新。", true); }
      data.groups.forEach(function (group) {
        var item = el("li", null, "group");
        var list = el("ol");
        group.wordings.forEach(function (w) { list.appendChild(wording(w)); });
        item.appendChild(list);
        groups.appendChild(item);
      });
    }).catch(failed);
  }

  function wording(w) {
    var item = el("li", null, "wording");
    item.dataset.id = w.id;
    item.appendChild(el("p", w.text, "text"));
    var why = w.reasons.map(function (r) { return WHY[r] || r; }).join("、");
    var understood = w.intent && w.intent !== "nlu_fallback" ?
      " · 助手理解为 " + intentLabel(w.intent) + (w.confidence !== null ? "（" + Math.round(w.confidence * 100) + "%）" : "") : "";
    item.appendChild(el("span", why + " · " + w.count + " 次 · " + time(w.said_at) + understood, "sub"));
    var actions = el("div", null, "actions");
    w.suggestions.forEach(function (name) {
      var button = el("button", intentLabel(name), "suggest");
      button.type = "button";
      button.dataset.intent = name;
      button.title = "标注为这个意图";
      button.addEventListener("click", function () { decide(item, { decision: "intent", intent: name }, intentLabel(name)); });
      actions.appendChild(button);
    });
    var select = el("select");
    select.setAttribute("aria-label", "其他意图");
    var placeholder = el("option", "其他意图…");
    placeholder.value = "";
    select.appendChild(placeholder);
    intents.forEach(function (i) {
      var option = el("option", i.title ? i.title + "（" + i.name + "）" : i.name);
      option.value = i.name;
      select.appendChild(option);
    });
    select.addEventListener("change", function () {
      if (select.value) { decide(item, { decision: "intent", intent: select.value }, intentLabel(select.value)); }
    });
    actions.appendChild(select);
    [["超出范围", function () { decide(item, { decision: "intent", intent: OUT_OF_SCOPE }, "超出范围"); }],
     ["新话题…", function () {
       var note = window.prompt("这是什么新话题？（必填，最多 500 字）");
       if (note && note.trim()) { decide(item, { decision: "new_topic", note: note.trim() }, "新话题"); }
     }],
     ["不处理", function () { decide(item, { decision: "dismissed" }, "不处理"); }],
     ["上下文", function () { context(item, w.id); }]].forEach(function (pair) {
      var button = el("button", pair[0]);
      button.type = "button";
      button.addEventListener("click", pair[1]);
      actions.appendChild(button);
    });
    item.appendChild(actions);
    return item;
  }

  function decide(item, body, label) {
    var controls = item.querySelectorAll("button, select");
    controls.forEach(function (c) { c.disabled = true; });
    request("POST", "/review/" + item.dataset.id + "/decision", body).then(function (data) {
      say("已标为“" + label + "”" + (data.messages > 1 ? "（同一说法的 " + data.messages + " 条消息）" : "") + "。", true);
      remove(item);
    }).catch(function (error) {
      if (error.status === 409) { say("这条消息已由他人处理。"); remove(item); return; }
      controls.forEach(function (c) { c.disabled = false; });
      failed(error);
    });
  }

  function remove(item) {
    var group = item.parentNode.parentNode;
    item.parentNode.removeChild(item);
    if (!group.querySelector(".wording")) { group.parentNode.removeChild(group); }
    if (!$("groups").firstChild) { $("inbox-empty").hidden = false; }
  }

  function context(item, id) {
    var shown = item.querySelector(".context");
    if (shown) { item.removeChild(shown); return; }
    request("GET", "/review/" + id).then(function (message) {
      var lines = el("ol", null, "lines context");
      message.conversation.forEach(function (l) {
        var li = line(l.who, l.text, l.at);
        if (l.this) { li.className += " this"; }
        lines.appendChild(li);
      });
      item.appendChild(lines);
    }).catch(failed);
  }

  function logout(message) {
    setToken("");
    current = null;
    $("detail").hidden = true;
    showDesk(false);
    say(message || "");
  }

  function loadList() {
    return request("GET", "/tickets").then(function (data) {
      var list = $("tickets");
      clear(list);
      $("empty").hidden = data.tickets.length > 0;
      data.tickets.forEach(function (t) {
        var button = el("button");
        button.type = "button";
        button.appendChild(el("strong", "#" + t.id + " " + (REASONS[t.reason] || t.reason)));
        button.appendChild(el("span", (CHANNELS[t.channel] || t.channel) + " · " + time(t.created_at) +
          (t.messages ? " · " + t.messages + " 条消息" : ""), "sub"));
        button.appendChild(el("span", t.question || "（无）", "sub"));
        if (t.id === current) { button.setAttribute("aria-current", "true"); }
        button.addEventListener("click", function () { open(t.id); });
        var item = el("li");
        item.appendChild(button);
        list.appendChild(item);
      });
    }).catch(failed);
  }

  function line(who, text, at, extra) {
    var item = el("li", null, who);
    item.appendChild(el("span", (WHO[who] || who) + " · " + time(at) + (extra || ""), "who"));
    item.appendChild(document.createTextNode(text));
    return item;
  }

  function render(t) {
    $("detail").hidden = false;
    $("detail-title").textContent = "工单 #" + t.id + (t.status === "open" ? "" : "（已关闭）");
    var meta = $("meta");
    clear(meta);
    [["渠道", CHANNELS[t.channel] || t.channel], ["会话", t.sender_id], ["团员编号", t.member_no || "未验证"],
     ["原因", REASONS[t.reason] || t.reason], ["创建时间", time(t.created_at)]].forEach(function (pair) {
      meta.appendChild(el("dt", pair[0]));
      meta.appendChild(el("dd", pair[1]));
    });
    $("question").textContent = t.question || "（无）";
    var transcript = $("transcript");
    clear(transcript);
    t.transcript.forEach(function (l) { transcript.appendChild(line(l.who, l.text, l.at)); });
    var messages = $("messages");
    clear(messages);
    $("no-messages").hidden = t.messages.length > 0;
    t.messages.forEach(function (m) {
      var note = m.author === "staff" ? (m.delivered ? " · 已送达" : " · 未送达") : "";
      messages.appendChild(line(m.author, m.text, m.at, note));
    });
    $("reply").hidden = t.status !== "open";
  }

  function open(id) {
    current = id;
    say("");
    return request("GET", "/tickets/" + id).then(function (t) {
      render(t);
      return loadList();
    }).catch(failed);
  }

  function count() {
    $("count").textContent = $("reply-text").value.trim().length + " / " + MAX;
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("login").addEventListener("submit", function (event) {
      event.preventDefault();
      setToken($("token").value.trim());
      $("token").value = "";
      showDesk(true);
      say("");
      loadList();
    });
    $("logout").addEventListener("click", function () { logout("已退出。"); });
    $("refresh").addEventListener("click", function () { loadList(); });
    $("show-desk").addEventListener("click", function () { showView("desk"); say(""); loadList(); });
    $("show-inbox").addEventListener("click", function () { showView("inbox"); say(""); loadInbox(); });
    $("inbox-refresh").addEventListener("click", function () { loadInbox(); });
    $("reply-text").addEventListener("input", count);

    $("reply").addEventListener("submit", function (event) {
      event.preventDefault();
      var text = $("reply-text").value.trim();
      if (!text || current === null) { return; }
      var button = event.target.querySelector("button[type=submit]");
      button.disabled = true;
      request("POST", "/tickets/" + current + "/reply", { text: text }).then(function (data) {
        $("reply-text").value = "";
        count();
        say(data.delivered ? "回复已发送到成员的微信。" : "回复已保存，成员打开聊天页面时即可看到。", true);
        return open(current);
      }).catch(failed).then(function () { button.disabled = false; });
    });

    $("close").addEventListener("click", function () {
      if (current === null || !window.confirm("关闭工单 #" + current + "？关闭后助手将恢复回答该成员。")) { return; }
      request("POST", "/tickets/" + current + "/close").then(function (t) {
        render(t);
        say("工单 #" + t.id + " 已关闭" + (t.resumed ? "，助手已恢复回答。" : "。"), true);
        return loadList();
      }).catch(failed);
    });

    if (token()) { showDesk(true); loadList(); } else { showDesk(false); }
  });
})();
