/*
 * What the customer widget and the operator console share: DOM helpers that only ever put
 * user-supplied text into text nodes (so names, cities and messages can never become HTML),
 * clocks in the other side's time zone, and the chat thread (history, live messages, pending
 * sends, read ticks, typing). Plain ES3, like switchboard.js.
 */
var SwitchboardUI = (function (window, document) {
  /* An element with a class and, optionally, text (as a text node, never as HTML). */
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.appendChild(document.createTextNode(String(text))); }
    return node;
  }

  function setText(node, text) {
    clear(node);
    node.appendChild(document.createTextNode(String(text)));
  }

  function clear(node) {
    while (node.firstChild) { node.removeChild(node.firstChild); }
  }

  /* Listen, with IE8's attachEvent as the fallback; the handler gets a normalised event. */
  function on(node, name, handler) {
    function wrapped(event) {
      event = event || window.event;
      if (!event.preventDefault) {
        event.preventDefault = function () { event.returnValue = false; };
      }
      if (!event.target) { event.target = event.srcElement; }
      return handler(event);
    }
    if (node.addEventListener) { node.addEventListener(name, wrapped, false); }
    else { node.attachEvent('on' + name, wrapped); }
  }

  function addClass(node, name) {
    if ((' ' + node.className + ' ').indexOf(' ' + name + ' ') === -1) {
      node.className = node.className ? node.className + ' ' + name : name;
    }
  }

  function removeClass(node, name) {
    node.className = (' ' + node.className + ' ').replace(' ' + name + ' ', ' ')
      .replace(/^\s+|\s+$/g, '');
  }

  /* An <input> of `type` named `name`, with extra attributes. */
  function input(type, name, attributes) {
    var node = el('input', 'sb-text-input');
    node.setAttribute('type', type);
    node.setAttribute('name', name);
    for (var key in attributes || {}) {
      if (attributes.hasOwnProperty(key)) { node.setAttribute(key, attributes[key]); }
    }
    return node;
  }

  /* A control with its visible label (clicking the text focuses the control). */
  function field(labelText, control) {
    var label = el('label', 'sb-field');
    label.appendChild(el('span', 'sb-label', labelText));
    label.appendChild(control);
    return label;
  }

  function button(text, className, type) {
    var node = el('button', className || 'sb-button', text);
    node.setAttribute('type', type || 'button');
    return node;
  }

  /* An error people see and screen readers announce. */
  function problem(text) {
    var box = el('p', 'sb-error', text);
    box.setAttribute('role', 'alert');
    return box;
  }

  /*
   * A value kept in localStorage or sessionStorage (`area`) as JSON. Where storage is missing
   * or refused (IE6/7, private modes) it lives only as long as the page.
   */
  function Saved(area, key) { this.area = area; this.key = key; }

  Saved.prototype.load = function () {
    try {
      var storage = window[this.area];
      var text = storage && storage.getItem(this.key);
      return text ? window.Switchboard.parse(text) : null;
    } catch (e) { return null; }
  };

  Saved.prototype.save = function (value) {
    try {
      var storage = window[this.area];
      if (!storage) { return; }
      if (value) { storage.setItem(this.key, window.Switchboard.stringify(value)); }
      else { storage.removeItem(this.key); }
    } catch (e) { /* refused: kept for this page only */ }
  };

  /* Messages per history page. */
  var HISTORY_PAGE = 50;

  function pad2(n) { return n < 10 ? '0' + n : String(n); }

  /* HH:MM now at a place `offsetMinutes` from UTC. */
  function clockAt(offsetMinutes) {
    var at = new Date(new Date().getTime() + offsetMinutes * 60000);
    return pad2(at.getUTCHours()) + ':' + pad2(at.getUTCMinutes());
  }

  /* HH:MM of a moment, in the viewer's own time. */
  function timeOf(ms) {
    var at = new Date(ms);
    return pad2(at.getHours()) + ':' + pad2(at.getMinutes());
  }

  /* "3 min", "2 h 5 min", "1 d 4 h" since `ms`. */
  function waitingSince(ms) {
    var minutes = Math.max(0, Math.floor((new Date().getTime() - ms) / 60000));
    if (minutes < 60) { return minutes + ' min'; }
    var hours = Math.floor(minutes / 60);
    if (hours < 24) { return hours + ' h ' + (minutes % 60) + ' min'; }
    return Math.floor(hours / 24) + ' d ' + (hours % 24) + ' h';
  }

  /* "Moscow, 12:36" for a party view (city and local time as far as they are known). */
  function placeLabel(party) {
    var parts = [];
    if (party.city) { parts.push(party.city); }
    if (typeof party.utc_offset_minutes === 'number') { parts.push(clockAt(party.utc_offset_minutes)); }
    else if (party.local_time) { parts.push(party.local_time); }
    return parts.join(', ');
  }

  function connectionLabel(state) {
    var names = { ws: 'WebSocket', sse: 'SSE', longpoll: 'long-poll', jsonp: 'JSONP' };
    var via = names[state.transport] || state.transport;
    if (state.status === 'connected') { return 'Live · ' + via; }
    if (state.status === 'unauthorized') { return 'Signed out'; }
    if (state.status === 'offline') {
      return 'Offline · retrying in ' + Math.ceil(state.retryIn / 1000) + ' s';
    }
    return 'Connecting · ' + via + '…';
  }

  /* A client's onState handler that shows the connection state in `node`. */
  function showsState(node) {
    return function (state) {
      setText(node, connectionLabel(state));
      node.className = 'sb-status sb-' + state.status;
    };
  }

  /* A short tone without any sound file; silently nothing where Web Audio is missing. */
  var audio = null;
  function beep() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { return; }
    try {
      audio = audio || new Context();
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.08;
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start(audio.currentTime);
      osc.stop(audio.currentTime + 0.15);
    } catch (e) { audio = null; }
  }

  function pageHidden() {
    return document.hidden === true || document.visibilityState === 'hidden';
  }

  /* A system notification when the page is hidden and the user allowed them. */
  function notify(title, body, onClick) {
    if (!window.Notification || window.Notification.permission !== 'granted' || !pageHidden()) {
      return false;
    }
    try {
      var shown = new window.Notification(title, { body: body });
      shown.onclick = function () { window.focus(); if (onClick) { onClick(); } shown.close(); };
      return true;
    } catch (e) { return false; }
  }

  /*
   * One conversation's messages and composer. `options`: mySide ('customer' | 'company'),
   * onSend(text), onTyping(), onSeen(lastMessageId from the other side).
   */
  function Thread(container, options) {
    var self = this;
    this.options = options;
    this.byId = {};
    this.pendingByClientId = {};
    this.readUpTo = 0;
    this.lastOtherId = 0;
    this.root = el('div', 'sb-thread');
    this.list = el('ol', 'sb-messages');
    this.list.setAttribute('aria-live', 'polite');
    this.list.setAttribute('aria-label', 'Messages');
    this.typing = el('div', 'sb-typing', '');
    this.form = el('form', 'sb-composer');
    this.input = el('textarea', 'sb-input');
    this.input.setAttribute('rows', '2');
    this.input.setAttribute('aria-label', 'Message');
    this.input.setAttribute('placeholder', 'Write a message…');
    this.input.setAttribute('maxlength', '4000');
    this.button = el('button', 'sb-send', 'Send');
    this.button.setAttribute('type', 'submit');
    this.form.appendChild(this.input);
    this.form.appendChild(this.button);
    this.earlier = button('Earlier messages', 'sb-button sb-quiet sb-earlier');
    this.earlier.style.display = 'none';
    this.root.appendChild(this.earlier);
    this.root.appendChild(this.list);
    this.root.appendChild(this.typing);
    this.root.appendChild(this.form);
    container.appendChild(this.root);

    var lastTyping = 0;
    on(this.form, 'submit', function (event) { event.preventDefault(); self.submit(); });
    on(this.input, 'keydown', function (event) {
      var key = event.keyCode || event.which;
      if (key === 13 && !event.shiftKey) { event.preventDefault(); self.submit(); return; }
      var at = new Date().getTime();
      if (at - lastTyping > 3000 && options.onTyping) { lastTyping = at; options.onTyping(); }
    });
  }

  Thread.prototype.submit = function () {
    var text = this.input.value.replace(/^\s+|\s+$/g, '');
    if (!text) { return; }
    this.input.value = '';
    this.options.onSend(text);
    this.input.focus();
  };

  /* History, newest first as the API gives it. */
  Thread.prototype.setHistory = function (messages) {
    for (var i = messages.length - 1; i >= 0; i--) { this.add(messages[i]); }
  };

  /*
   * Load the newest page of history, then older pages on demand ("Earlier messages").
   * `done(err)` after the first page.
   */
  Thread.prototype.loadHistory = function (client, conversationId, done) {
    var self = this;
    var oldest = null;
    function page(first) {
      var path = '/v1/conversations/' + conversationId + '/messages?limit=' + HISTORY_PAGE +
        (oldest === null ? '' : '&before=' + oldest);
      self.earlier.disabled = true;
      client.api('GET', path, null, function (err, answer) {
        self.earlier.disabled = false;
        if (!err) {
          var keepAt = self.list.scrollHeight - self.list.scrollTop;
          self.setHistory(answer.messages);
          if (answer.messages.length) { oldest = answer.messages[answer.messages.length - 1].id; }
          self.earlier.style.display = answer.has_more ? '' : 'none';
          // Older messages go above what the reader is looking at; keep their place.
          if (!first) { self.list.scrollTop = self.list.scrollHeight - keepAt; }
        }
        if (first && done) { done(err); }
      });
    }
    on(this.earlier, 'click', function () { page(false); });
    page(true);
  };

  Thread.prototype.isMine = function (message) {
    return message.sender.side === this.options.mySide;
  };

  /* Show a message once, in id order; a pending copy of it is replaced. */
  Thread.prototype.add = function (message) {
    if (this.byId[message.id]) { return false; }
    var pending = message.client_msg_id && this.pendingByClientId[message.client_msg_id];
    var item = pending || el('li', '');
    if (pending) {
      delete this.pendingByClientId[message.client_msg_id];
      clear(item);
      item.parentNode.removeChild(item);
    }
    item.className = 'sb-message ' + (this.isMine(message) ? 'sb-mine' : 'sb-theirs');
    item.setAttribute('data-id', String(message.id));
    item.appendChild(el('span', 'sb-author', message.sender.name));
    item.appendChild(el('div', 'sb-text', message.text));
    var meta = el('span', 'sb-meta', timeOf(message.created_at));
    if (this.isMine(message)) {
      var tick = el('span', 'sb-tick', '');
      meta.appendChild(tick);
      item.tick = tick;
    } else if (message.id > this.lastOtherId) {
      this.lastOtherId = message.id;
    }
    item.appendChild(meta);
    this.byId[message.id] = item;
    this.insertInOrder(item, message.id);
    this.paintTick(item, message.id);
    this.scrollDown();
    return true;
  };

  Thread.prototype.insertInOrder = function (item, id) {
    var node = this.list.lastChild;
    // Pending messages stay at the bottom; stored ones sort by id.
    while (node && (!node.getAttribute('data-id') || Number(node.getAttribute('data-id')) > id)) {
      node = node.previousSibling;
    }
    if (node) { this.list.insertBefore(item, node.nextSibling); }
    else { this.list.insertBefore(item, this.list.firstChild); }
  };

  /* A message being sent: shown at once, marked until the server has it. */
  Thread.prototype.addPending = function (clientMsgId, text, name) {
    var item = el('li', 'sb-message sb-mine sb-pending');
    item.appendChild(el('span', 'sb-author', name || 'You'));
    item.appendChild(el('div', 'sb-text', text));
    item.appendChild(el('span', 'sb-meta', 'sending…'));
    this.pendingByClientId[clientMsgId] = item;
    this.list.appendChild(item);
    this.scrollDown();
  };

  Thread.prototype.failPending = function (clientMsgId, reason) {
    var item = this.pendingByClientId[clientMsgId];
    if (!item) { return; }
    delete this.pendingByClientId[clientMsgId];
    item.className = 'sb-message sb-mine sb-failed';
    setText(item.lastChild, 'not sent: ' + reason);
  };

  /* The other side has read my messages up to `id`: double ticks. */
  Thread.prototype.setReadUpTo = function (id) {
    if (id <= this.readUpTo) { return; }
    this.readUpTo = id;
    for (var key in this.byId) {
      if (this.byId.hasOwnProperty(key)) { this.paintTick(this.byId[key], Number(key)); }
    }
  };

  Thread.prototype.paintTick = function (item, id) {
    if (!item.tick) { return; }
    var read = id <= this.readUpTo;
    setText(item.tick, read ? ' ✓✓' : ' ✓');
    item.tick.className = read ? 'sb-tick sb-read' : 'sb-tick';
    item.tick.setAttribute('title', read ? 'read' : 'delivered');
  };

  Thread.prototype.showTyping = function (who) {
    var self = this;
    setText(this.typing, who + ' is typing…');
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(function () { setText(self.typing, ''); }, 4000);
  };

  Thread.prototype.scrollDown = function () { this.list.scrollTop = this.list.scrollHeight; };

  /*
   * One row of a conversation list: a button with a title, an unread badge, a line of
   * details and the last message's excerpt. `row`: {title, unread, meta, urgent, excerpt,
   * selected, onOpen}.
   */
  function conversationRow(row) {
    var item = el('li', 'sb-list-item');
    var open = button('', row.selected ? 'sb-row sb-selected' : 'sb-row');
    if (row.selected) { open.setAttribute('aria-current', 'true'); }
    open.appendChild(el('strong', 'sb-row-title', row.title));
    if (row.unread) {
      var badge = el('span', 'sb-badge', row.unread);
      badge.setAttribute('title', 'unread');
      open.appendChild(badge);
    }
    if (row.meta) { open.appendChild(el('span', 'sb-row-meta' + (row.urgent ? ' sb-waiting' : ''), row.meta)); }
    if (row.excerpt) { open.appendChild(el('span', 'sb-row-excerpt', row.excerpt)); }
    on(open, 'click', row.onOpen);
    item.appendChild(open);
    return item;
  }

  /*
   * A Thread wired to a Switchboard client for one conversation: sends go through the
   * client's outbox (shown as pending until stored), typing is announced. `onSent(message)`
   * runs once a message is stored.
   */
  function liveThread(container, client, conversationId, options) {
    var thread = new Thread(container, {
      mySide: options.mySide,
      onSend: function (text) {
        var clientMsgId = client.send(conversationId, text, function (err, message) {
          if (err) { thread.failPending(clientMsgId, err.message); return; }
          thread.add(message);
          if (options.onSent) { options.onSent(message); }
        });
        thread.addPending(clientMsgId, text, options.myName);
      },
      onTyping: function () { client.api('POST', '/v1/conversations/' + conversationId + '/typing', {}); }
    });
    return thread;
  }

  /*
   * New messages counted in the tab title while the page is hidden; when it shows again the
   * count goes and `onVisible` runs (to mark what is on screen read).
   */
  function HiddenCounter(onVisible) {
    var self = this;
    this.count = 0;
    this.title = document.title;
    on(document, 'visibilitychange', function () {
      if (pageHidden()) { return; }
      self.count = 0;
      document.title = self.title;
      onVisible();
    });
  }

  HiddenCounter.prototype.bump = function () {
    if (!pageHidden()) { return; }
    this.count += 1;
    document.title = '(' + this.count + ') ' + this.title;
  };

  return {
    el: el,
    input: input,
    field: field,
    button: button,
    problem: problem,
    Saved: Saved,
    liveThread: liveThread,
    conversationRow: conversationRow,
    HiddenCounter: HiddenCounter,
    setText: setText,
    clear: clear,
    on: on,
    addClass: addClass,
    removeClass: removeClass,
    clockAt: clockAt,
    timeOf: timeOf,
    waitingSince: waitingSince,
    placeLabel: placeLabel,
    showsState: showsState,
    beep: beep,
    notify: notify,
    pageHidden: pageHidden,
    Thread: Thread
  };
}(window, document));
