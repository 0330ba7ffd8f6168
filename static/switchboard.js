/*
 * Switchboard client: one small transport layer for every browser from IE6 to today.
 *
 * Plain ES3 on purpose (no build step, parses in IE6): no trailing commas, no reserved words
 * as property names, no let/const/arrow functions, and every newer API behind a check.
 *
 *   var client = Switchboard.connect({
 *     base: 'https://chat.example.com',   // '' = same origin
 *     token: 'customer or operator token',
 *     transport: 'auto',                  // or 'ws' | 'sse' | 'longpoll' | 'jsonp'
 *     onEvent: function (event) {},       // {seq, type, data}; typing has no seq
 *     onState: function (state) {},       // {status, transport, retryIn}
 *     onStart: function () {},            // load what the page shows now (see below)
 *     onUnauthorized: function () {}
 *   });
 *   client.api('GET', '/v1/conversations', null, function (err, body, status) {});
 *   client.send(conversationId, 'text', function (err, message) {});
 *
 * Receiving: WebSocket, then Server-Sent Events, then XHR long-poll, then JSONP long-poll,
 * picked by feature detection (or forced). Every (re)connect resumes from the last seq seen,
 * so nothing is lost; events at or below it are dropped, so nothing is shown twice. A
 * transport that cannot connect while the server answers plain requests is given up for the
 * next one; when the server itself is down the client waits with backoff and jitter instead.
 *
 * onStart runs once the client knows where the inbox's head is, before any event is handed
 * over: at first, and again whenever it had to start over because the server no longer has
 * events it had seen (cursor expired, or the server restored from a backup). Whatever the page
 * loads from the API then is as new as the head or newer, so together with the events that
 * follow nothing falls in between; an item in both is the same item (dedupe by id).
 *
 * Sending: every message carries a client_msg_id and is retried until the server answers, in
 * order, one at a time per client; the server stores a retried message once.
 */
var Switchboard = (function (window, document) {
  var ORDER = ['ws', 'sse', 'longpoll', 'jsonp'];
  var POLL_SECONDS = 25;
  // IE's longest address is 2083 characters; a JSONP call carries its body in the address.
  var MAX_SCRIPT_URL = 2000;
  var EVENT_TYPES = ['message.created', 'conversation.created', 'conversation.read',
    'notification', 'typing'];

  /* ---- small helpers ---- */

  function now() { return new Date().getTime(); }

  function indexOf(list, item) {
    for (var i = 0; i < list.length; i++) { if (list[i] === item) { return i; } }
    return -1;
  }

  function encode(value) { return encodeURIComponent(String(value)); }

  function addQuery(url, params) {
    var parts = [];
    for (var key in params) {
      if (params.hasOwnProperty(key) && params[key] !== null && params[key] !== undefined) {
        parts.push(encode(key) + '=' + encode(params[key]));
      }
    }
    if (!parts.length) { return url; }
    return url + (url.indexOf('?') === -1 ? '?' : '&') + parts.join('&');
  }

  function listen(target, name, handler) {
    if (target.addEventListener) { target.addEventListener(name, handler, false); }
    else if (target.attachEvent) { target.attachEvent('on' + name, handler); }
  }

  /* Backoff with full jitter: a random wait between half and all of 2^attempt steps. */
  function backoff(attempt, base, max) {
    var ceiling = Math.min(max, base * Math.pow(2, Math.min(attempt, 16)));
    return Math.round(ceiling / 2 + Math.random() * ceiling / 2);
  }

  var idCounter = 0;
  function uniqueId() {
    idCounter += 1;
    return now().toString(36) + '-' + Math.floor(Math.random() * 2176782336).toString(36) +
      '-' + idCounter.toString(36);
  }

  /* ---- JSON, with a fallback for IE6/7 ---- */

  var hasJSON = !!(window.JSON && window.JSON.parse && window.JSON.stringify);

  function quote(text) {
    return '"' + text.replace(/[\\"\u0000-\u001f\u2028\u2029]/g, function (c) {
      var special = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
      return special[c] || '\\u' + ('0000' + c.charCodeAt(0).toString(16)).slice(-4);
    }) + '"';
  }

  function stringify(value) {
    if (hasJSON) { return window.JSON.stringify(value); }
    if (value === null || value === undefined) { return 'null'; }
    var kind = typeof value;
    if (kind === 'string') { return quote(value); }
    if (kind === 'number') { return isFinite(value) ? String(value) : 'null'; }
    if (kind === 'boolean') { return String(value); }
    var parts = [];
    if (Object.prototype.toString.call(value) === '[object Array]') {
      for (var i = 0; i < value.length; i++) { parts.push(stringify(value[i])); }
      return '[' + parts.join(',') + ']';
    }
    for (var key in value) {
      if (value.hasOwnProperty(key) && value[key] !== undefined) {
        parts.push(quote(key) + ':' + stringify(value[key]));
      }
    }
    return '{' + parts.join(',') + '}';
  }

  function parse(text) {
    if (hasJSON) { return window.JSON.parse(text); }
    // json2.js's check: only JSON tokens may remain before eval sees the text.
    var safe = text.replace(/\\(?:["\\\/bfnrt]|u[0-9a-fA-F]{4})/g, '@')
      .replace(/"[^"\\\n\r]*"|true|false|null|-?\d+(?:\.\d*)?(?:[eE][+\-]?\d+)?/g, ']')
      .replace(/(?:^|:|,)(?:\s*\[)+/g, '');
    if (!/^[\],:{}\s]*$/.test(safe)) { throw new Error('not JSON'); }
    return eval('(' + text + ')');
  }

  /* ---- where we are, and what this browser can do ---- */

  function originOf(url) {
    var match = /^(https?:)\/\/([^\/?#]+)/i.exec(url);
    if (!match) { return null; }
    return (match[1] + '//' + match[2]).toLowerCase();
  }

  function pageOrigin() {
    var loc = window.location;
    return (loc.protocol + '//' + loc.host).toLowerCase();
  }

  function isSameOrigin(base) {
    var origin = originOf(base);
    return !origin || origin === pageOrigin();
  }

  function newXhr() {
    if (window.XMLHttpRequest) { return new window.XMLHttpRequest(); }
    try { return new window.ActiveXObject('Microsoft.XMLHTTP'); } catch (e) { return null; }
  }

  function supportsCors() {
    var xhr = window.XMLHttpRequest ? new window.XMLHttpRequest() : null;
    return !!xhr && ('withCredentials' in xhr);
  }

  /* How plain requests travel: 'xhr' (same origin), 'cors', 'xdr' (IE8/9) or 'jsonp'. */
  function requestMode(base, forced) {
    if (forced === 'jsonp') { return 'jsonp'; }
    if (isSameOrigin(base)) { return 'xhr'; }
    if (supportsCors()) { return 'cors'; }
    if (window.XDomainRequest) { return 'xdr'; }
    return 'jsonp';
  }

  /* The receiving transports this browser can use here, best first. */
  function availableTransports(base, mode) {
    var list = [];
    if (window.WebSocket && mode !== 'xdr' && mode !== 'jsonp') { list.push('ws'); }
    if (window.EventSource && (mode === 'xhr' || mode === 'cors')) { list.push('sse'); }
    if (mode !== 'jsonp') { list.push('longpoll'); }
    list.push('jsonp');
    return list;
  }

  /* ---- JSONP ---- */

  var callbacks = {};
  var head = null;

  /* Load `url` as a script that calls back with one JSON value; `done(err, value)`. */
  function jsonp(url, timeoutMs, done) {
    var name = 'c' + uniqueId().replace(/-/g, '_');
    var script = document.createElement('script');
    var finished = false;
    var timer;
    function finish(err, value) {
      if (finished) { return; }
      finished = true;
      clearTimeout(timer);
      callbacks[name] = function () {};
      script.onload = script.onerror = script.onreadystatechange = null;
      if (script.parentNode) { script.parentNode.removeChild(script); }
      done(err, value);
    }
    callbacks[name] = function (value) { finish(null, value); };
    timer = setTimeout(function () { finish({ network: true, message: 'timed out' }); }, timeoutMs);
    script.onerror = function () { finish({ network: true, message: 'script failed' }); };
    // IE6-8 have no onerror on scripts: a loaded script that never called back failed.
    script.onreadystatechange = function () {
      if (script.readyState === 'loaded' || script.readyState === 'complete') {
        setTimeout(function () { finish({ network: true, message: 'no answer' }); }, 0);
      }
    };
    script.async = true;
    script.src = addQuery(url, { callback: 'Switchboard._callbacks.' + name });
    head = head || document.getElementsByTagName('head')[0] || document.documentElement;
    head.appendChild(script);
    return { abort: function () { finish({ aborted: true }); } };
  }

  /* ---- one HTTP request, whatever the browser ---- */

  /*
   * done(err, body, status): err is null for 2xx; {network: true} when the server could not
   * be reached; otherwise {status, code, message} from the API's JSON error.
   */
  function httpRequest(opts, done) {
    var method = opts.method || 'GET';
    var url = opts.base + opts.path;
    var body = opts.body === null || opts.body === undefined ? null : stringify(opts.body);
    var mode = opts.mode;
    var finished = false;

    function answer(status, text) {
      if (finished) { return; }
      finished = true;
      if (!status) { done({ network: true, message: 'network error' }, null, 0); return; }
      var value = null;
      try { value = text ? parse(text) : null; } catch (e) { value = null; }
      if (status >= 200 && status < 300) { done(null, value, status); return; }
      var detail = value && value.error ? value.error : {};
      done({ status: status, code: detail.code || 'http_' + status,
        message: detail.message || 'request failed', retryable: status >= 500 || status === 429 },
      value, status);
    }

    if (mode === 'jsonp' || (mode === 'xdr' && method !== 'GET' && method !== 'POST')) {
      // The event poll speaks JSONP itself; every other call goes through the tunnel.
      var direct = method === 'GET' && /^\/v1\/events(\?|$)/.test(opts.path);
      var scriptUrl = direct ? addQuery(url, { access_token: opts.token }) :
        addQuery(opts.base + '/v1/jsonp', {
          method: method, path: opts.path, body: body, access_token: opts.token
        });
      if (scriptUrl.length > MAX_SCRIPT_URL) {
        // IE cuts longer addresses; the call could never arrive, so say so instead of retrying.
        setTimeout(function () {
          done({ status: 413, code: 'too_long_for_this_browser',
            message: 'too long for this browser: please split it into shorter messages' }, null, 413);
        }, 0);
        return { abort: function () {} };
      }
      return jsonp(scriptUrl, opts.timeoutMs || 30000, function (err, value) {
        if (err) { if (!err.aborted) { answer(0, null); } return; }
        if (direct) { answer(value && value.error ? value.status : 200, stringify(value)); return; }
        answer(value.status || 0, stringify(value.body === undefined ? value : value.body));
      });
    }

    if (mode === 'xdr') {
      // XDomainRequest: no custom headers, text/plain bodies, no status codes on failure.
      var xdr = new window.XDomainRequest();
      xdr.onload = function () { answer(200, xdr.responseText); };
      xdr.onerror = function () {
        // Learn the real status and error through the tunnel (calls here are idempotent).
        if (finished) { return; }
        finished = true;
        httpRequest({ base: opts.base, path: opts.path, method: method, body: opts.body,
          token: opts.token, mode: 'jsonp', timeoutMs: opts.timeoutMs }, done);
      };
      xdr.ontimeout = function () { answer(0, null); };
      xdr.onprogress = function () {};
      xdr.timeout = opts.timeoutMs || 30000;
      xdr.open(method, addQuery(url, { access_token: opts.token }));
      setTimeout(function () { xdr.send(body || ''); }, 0);
      return { abort: function () { finished = true; xdr.abort(); } };
    }

    var xhr = newXhr();
    var timer = setTimeout(function () { xhr.abort(); answer(0, null); }, opts.timeoutMs || 30000);
    xhr.open(method, url, true);
    if (opts.token) { xhr.setRequestHeader('Authorization', 'Bearer ' + opts.token); }
    if (body !== null) { xhr.setRequestHeader('Content-Type', 'application/json'); }
    xhr.onreadystatechange = function () {
      if (xhr.readyState !== 4) { return; }
      clearTimeout(timer);
      var status = 0;
      try { status = xhr.status; } catch (e) { status = 0; }
      // IE reports some network failures as 12xxx.
      if (status >= 12000) { status = 0; }
      answer(status, xhr.responseText);
    };
    xhr.send(body);
    return { abort: function () { finished = true; clearTimeout(timer); xhr.abort(); } };
  }

  /*
   * Run `fn` once the page has loaded. A long-poll script or request started earlier holds
   * the load event back, and the browser shows the page as loading for the whole poll.
   */
  function afterLoad(fn) {
    if (document.readyState === 'complete') { setTimeout(fn, 0); return; }
    listen(window, 'load', function () { setTimeout(fn, 0); });
  }

  /* ---- the client ---- */

  function Client(options) {
    var self = this;
    this.base = (options.base || '').replace(/\/+$/, '');
    this.token = options.token;
    this.forced = indexOf(ORDER, options.transport) === -1 ? null : options.transport;
    this.mode = requestMode(this.base, this.forced);
    this.transports = this.forced ? [this.forced] : availableTransports(this.base, this.mode);
    this.transportIndex = 0;
    this.onEvent = options.onEvent || function () {};
    this.onState = options.onState || function () {};
    this.onStart = options.onStart || function () {};
    this.onUnauthorized = options.onUnauthorized || function () {};
    this.cursor = null;     // the last seq seen; null until the head is known
    this.attempt = 0;       // failed tries in a row, for backoff
    this.failures = 0;      // failed opens of the current transport while the server answered
    this.connection = null;
    this.timer = null;
    this.stopped = false;
    this.outbox = [];       // messages waiting to be sent, in order
    this.sending = false;
    this.sendTimer = null;
    this.state = { status: 'connecting', transport: this.transports[0], retryIn: 0 };
    // The browser knows when the network is back: do not sit out the backoff then.
    listen(window, 'online', function () { self.retryNow(); });
    afterLoad(function () { self.connect(); });
  }

  Client.prototype.setState = function (status, retryIn) {
    var transport = this.transports[this.transportIndex];
    if (this.state.status === status && this.state.transport === transport && !retryIn) {
      return;
    }
    this.state = { status: status, transport: transport, retryIn: retryIn || 0 };
    this.onState(this.state);
  };

  /* A plain API call with this client's token and request mode. */
  Client.prototype.api = function (method, path, body, done) {
    return httpRequest({ base: this.base, path: path, method: method, body: body,
      token: this.token, mode: this.mode }, done || function () {});
  };

  Client.prototype.connect = function () {
    var self = this;
    if (this.stopped) { return; }
    this.timer = null;
    if (this.state.status !== 'connected') {
      this.setState(this.attempt ? 'reconnecting' : 'connecting');
    }
    if (this.cursor === null) {
      // Start at the head: ask for it without waiting, so later events are all ours.
      this.poll(0, function (err, answer) {
        if (err) { self.failed(err, true); return; }
        self.cursor = answer.cursor;
        self.onStart();
        self.connect();
      });
      return;
    }
    var name = this.transports[this.transportIndex];
    if (name === 'ws') { this.openWebSocket(); }
    else if (name === 'sse') { this.openEventSource(); }
    else { this.longPoll(); }
  };

  /* One long-poll round trip: done(err, {cursor, events}). */
  Client.prototype.poll = function (timeout, done, viaJsonp) {
    return httpRequest({ base: this.base, token: this.token,
      path: addQuery('/v1/events', { cursor: this.cursor, timeout: timeout }),
      mode: viaJsonp ? 'jsonp' : this.mode, timeoutMs: (timeout + 15) * 1000 }, done);
  };

  Client.prototype.longPoll = function () {
    var self = this;
    var viaJsonp = this.transports[this.transportIndex] === 'jsonp';
    // Until a poll has come back, ask without waiting: it says at once that we are through.
    var timeout = this.state.status === 'connected' ? POLL_SECONDS : 0;
    this.connection = this.poll(timeout, function (err, answer) {
      self.connection = null;
      if (self.stopped) { return; }
      if (err) { self.failed(err, true); return; }
      self.failures = 0;
      self.opened();
      self.deliver(answer.events || []);
      if (typeof answer.cursor === 'number' && answer.cursor > self.cursor) {
        self.cursor = answer.cursor;
      }
      self.connect();
    }, viaJsonp);
  };

  Client.prototype.streamUrl = function (path) {
    var base = this.base || (window.location.protocol + '//' + window.location.host);
    return addQuery(base + path, { access_token: this.token, cursor: this.cursor });
  };

  Client.prototype.openWebSocket = function () {
    var self = this;
    var url = this.streamUrl('/v1/ws').replace(/^http/i, 'ws');
    var socket;
    var health = new StreamHealth();
    try { socket = new window.WebSocket(url); } catch (e) { this.streamFailed(false); return; }
    this.connection = { abort: function () { socket.onclose = null; socket.close(); } };
    socket.onopen = function () { health.opened(); self.opened(); };
    socket.onmessage = function (message) {
      var frame;
      health.received();
      try { frame = parse(message.data); } catch (e) { return; }
      if (frame && frame.type !== 'ack' && frame.type !== 'error') { self.deliver([frame]); }
    };
    socket.onclose = function () {
      socket.onclose = socket.onmessage = null;
      self.connection = null;
      self.streamFailed(health.worked());
    };
  };

  Client.prototype.openEventSource = function () {
    var self = this;
    var source;
    var health = new StreamHealth();
    try { source = new window.EventSource(this.streamUrl('/v1/events/stream')); } catch (e) {
      this.streamFailed(false);
      return;
    }
    this.connection = { abort: function () { source.close(); } };
    function onMessage(message) {
      var event;
      health.received();
      try { event = parse(message.data); } catch (e) { return; }
      self.deliver([event]);
    }
    for (var i = 0; i < EVENT_TYPES.length; i++) {
      source.addEventListener(EVENT_TYPES[i], onMessage, false);
    }
    source.onmessage = onMessage;
    source.onopen = function () { health.opened(); self.opened(); };
    source.onerror = function () {
      // We reconnect ourselves (with our cursor and backoff), not the browser.
      source.close();
      self.connection = null;
      self.streamFailed(health.worked());
    };
  };

  /*
   * Whether a stream really worked: it delivered something, or stayed open a while. A proxy
   * that accepts a WebSocket and drops it at once must count as a failure, or the client
   * would reconnect to it forever instead of falling back.
   */
  function StreamHealth() { this.openedAt = 0; this.gotData = false; }
  StreamHealth.prototype.opened = function () { this.openedAt = now(); };
  StreamHealth.prototype.received = function () { this.gotData = true; };
  StreamHealth.prototype.worked = function () {
    return this.gotData || (this.openedAt > 0 && now() - this.openedAt > 5000);
  };

  /*
   * A stream closed. If it had worked, just reconnect. If it did not, ask the server
   * a plain question to learn why: the server down means wait; a cursor or token problem is
   * handled; the server up means this transport does not work here, so count it towards
   * falling back.
   */
  Client.prototype.streamFailed = function (worked) {
    var self = this;
    if (this.stopped) { return; }
    if (worked) {
      this.attempt = 0;
      this.failures = 0;
      this.failed({ network: true, message: 'connection closed' }, false);
      return;
    }
    this.setState('reconnecting');
    this.poll(0, function (err) {
      if (err) { self.failed(err, true); return; }
      self.failures += 1;
      self.failed({ transport: true, message: 'transport unavailable' }, true);
    });
  };

  Client.prototype.opened = function () {
    this.attempt = 0;
    this.setState('connected');
    this.kickOutbox();
  };

  /* The server is back: a send waiting out its backoff goes now. */
  Client.prototype.kickOutbox = function () {
    if (!this.sendTimer) { return; }
    clearTimeout(this.sendTimer);
    this.sendTimer = null;
    this.sending = false;
    this.flush();
  };

  Client.prototype.failed = function (err, countAttempt) {
    var self = this;
    if (this.stopped) { return; }
    if (err.status === 401) {
      this.setState('unauthorized');
      this.onUnauthorized(err);
      return;
    }
    var startOver = err.status === 410 || err.code === 'bad_cursor';
    if (startOver) {
      // Events we never saw are gone, or the server went back in time: start again from the
      // head (onStart then tells the page to reload).
      this.cursor = null;
    }
    if (this.failures >= 2 && this.transportIndex < this.transports.length - 1) {
      this.transportIndex += 1;
      this.failures = 0;
      this.attempt = 0;
    }
    if (countAttempt) { this.attempt += 1; }
    var delay = startOver ? 0 : backoff(this.attempt, 500, 30000);
    this.setState(this.attempt > 1 ? 'offline' : 'reconnecting', delay);
    this.timer = setTimeout(function () { self.connect(); }, delay);
  };

  /* Hand new events to the page in order, each once. */
  Client.prototype.deliver = function (events) {
    for (var i = 0; i < events.length; i++) {
      var event = events[i];
      if (!event) { continue; }
      if (typeof event.seq === 'number') {
        if (this.cursor !== null && event.seq <= this.cursor) { continue; }
        this.cursor = event.seq;
      }
      try { this.onEvent(event); } catch (e) { if (window.console) { window.console.error(e); } }
    }
  };

  /* Reconnect now (e.g. when the browser says it is back online). */
  Client.prototype.retryNow = function () {
    if (this.stopped) { return; }
    this.kickOutbox();
    if (!this.timer) { return; }
    clearTimeout(this.timer);
    this.timer = null;
    this.attempt = 0;
    this.connect();
  };

  Client.prototype.stop = function () {
    this.stopped = true;
    if (this.timer) { clearTimeout(this.timer); }
    if (this.connection) { this.connection.abort(); }
    this.connection = null;
  };

  /*
   * Send a message; done(err, message) once the server has it. The client_msg_id is made
   * here and kept across retries, so a retry after a lost answer is stored once.
   */
  Client.prototype.send = function (conversationId, text, done) {
    var item = { conversationId: conversationId, text: text, clientMsgId: uniqueId(),
      done: done || function () {}, attempt: 0 };
    this.outbox.push(item);
    this.flush();
    return item.clientMsgId;
  };

  Client.prototype.flush = function () {
    var self = this;
    if (this.sending || !this.outbox.length || this.stopped) { return; }
    var item = this.outbox[0];
    this.sending = true;
    this.api('POST', '/v1/conversations/' + item.conversationId + '/messages',
      { text: item.text, client_msg_id: item.clientMsgId }, function (err, body) {
        if (err && (err.network || err.retryable)) {
          item.attempt += 1;
          self.sendTimer = setTimeout(function () {
            self.sendTimer = null;
            self.sending = false;
            self.flush();
          }, backoff(item.attempt, 500, 15000));
          return;
        }
        self.outbox.shift();
        self.sending = false;
        item.done(err, body && body.message);
        self.flush();
      });
  };

  /*
   * An idempotent call (a read receipt, or opening a chat with a client_msg_id) retried with
   * backoff while the server cannot be reached or answers 5xx/429.
   */
  Client.prototype.reliable = function (method, path, body, done) {
    var self = this;
    var attempt = 0;
    function tryOnce() {
      self.api(method, path, body, function (err, answer, status) {
        if (err && (err.network || err.retryable) && attempt < 12 && !self.stopped) {
          attempt += 1;
          setTimeout(tryOnce, backoff(attempt, 500, 15000));
          return;
        }
        if (done) { done(err, answer, status); }
      });
    }
    tryOnce();
  };

  /* Messages not yet confirmed by the server. */
  Client.prototype.pending = function () { return this.outbox.length; };

  /* The transport forced by ?transport= in the page's address, if any. */
  function transportFromLocation() {
    var match = /[?&]transport=(ws|sse|longpoll|jsonp)(?:&|#|$)/.exec(window.location.search);
    return match ? match[1] : null;
  }

  return {
    connect: function (options) { return new Client(options); },
    request: httpRequest,
    requestMode: requestMode,
    transportFromLocation: transportFromLocation,
    uniqueId: uniqueId,
    listen: listen,
    parse: parse,
    stringify: stringify,
    _callbacks: callbacks
  };
}(window, document));
