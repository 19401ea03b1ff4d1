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
    $("desk").hidden = !on;
    $("logout").hidden = !on;
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
