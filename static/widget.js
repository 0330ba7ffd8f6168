/*
 * The customer chat widget. One script tag puts it on any page:
 *
 *   <script src="https://chat.example.com/widget.js" async></script>
 *
 * Optional attributes on that tag: data-transport="ws|sse|longpoll|jsonp" (else picked by
 * the browser's abilities, or by ?transport= in the page address), data-company="ID" (start
 * with that company), data-inline="1" (fill a #switchboard-widget element instead of a
 * floating button). It loads its two helpers and its stylesheet from the same server, and
 * talks to that server from whatever origin the page has (CORS, XDomainRequest or JSONP).
 * Plain ES3, like switchboard.js.
 */
(function (window, document) {
  var script = document.currentScript || (function () {
    var scripts = document.getElementsByTagName('script');
    for (var i = scripts.length - 1; i >= 0; i--) {
      if (/widget\.js(\?|$)/.test(scripts[i].src)) { return scripts[i]; }
    }
    return scripts[scripts.length - 1];
  }());
  var assets = script.src.replace(/widget\.js(\?.*)?$/, '');
  var settings = {
    transport: script.getAttribute('data-transport'),
    company: script.getAttribute('data-company'),
    inline: script.getAttribute('data-inline') === '1'
  };

  function load(src, done) {
    var tag = document.createElement('script');
    var finished = false;
    tag.src = src;
    tag.onload = tag.onreadystatechange = function () {
      if (finished || (tag.readyState && tag.readyState !== 'loaded' && tag.readyState !== 'complete')) {
        return;
      }
      finished = true;
      done();
    };
    document.getElementsByTagName('head')[0].appendChild(tag);
  }

  function stylesheet(href) {
    var link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = href;
    document.getElementsByTagName('head')[0].appendChild(link);
  }

  function ready(done) {
    if (document.body) { done(); return; }
    var timer = setInterval(function () {
      if (document.body) { clearInterval(timer); done(); }
    }, 20);
  }

  var links = document.getElementsByTagName('link');
  var styled = false;
  for (var l = 0; l < links.length; l++) { styled = styled || /switchboard\.css$/.test(links[l].href); }
  if (!styled) { stylesheet(assets + 'switchboard.css'); }
  var steps = [];
  if (!window.Switchboard) { steps.push(assets + 'switchboard.js'); }
  if (!window.SwitchboardUI) { steps.push(assets + 'chat-ui.js'); }
  (function next() {
    if (steps.length) { load(steps.shift(), next); } else { ready(start); }
  }());

  function start() {
    var UI = window.SwitchboardUI;
    var el = UI.el;
    var on = UI.on;
    var setText = UI.setText;
    var base = assets.replace(/\/$/, '');
    var pageOrigin = window.location.protocol + '//' + window.location.host;
    if (base.toLowerCase() === pageOrigin.toLowerCase()) { base = ''; }
    var transport = window.Switchboard.transportFromLocation() || settings.transport || 'auto';
    // The customer's identity stays on this device, per Switchboard server.
    var saved = new UI.Saved('localStorage', 'switchboard.customer:' + (base || pageOrigin));

    var me = saved.load();
    var client = null;
    var current = null;       // the open chat: {conversation, thread, readSent}
    var chatId = null;        // the chat on screen (also while it loads)
    var started = false;      // the client has found the inbox's head once
    var currentView = '';
    var unseenWhileHidden = new UI.HiddenCounter(function () { markRead(); });

    /* ---- frame ---- */
    var root = el('section', 'sb-widget' + (settings.inline ? ' sb-inline' : ' sb-floating'));
    root.setAttribute('aria-label', 'Chat');
    var panel = el('div', 'sb-panel');
    var top = el('header', 'sb-top');
    var back = el('button', 'sb-back', '‹');
    back.setAttribute('type', 'button');
    back.setAttribute('aria-label', 'Back to conversations');
    var title = el('h2', 'sb-title', 'Messages');
    var status = el('span', 'sb-status', '');
    status.setAttribute('role', 'status');
    top.appendChild(back);
    top.appendChild(title);
    top.appendChild(status);
    var body = el('div', 'sb-body');
    panel.appendChild(top);
    panel.appendChild(body);
    root.appendChild(panel);
    var host = settings.inline && document.getElementById('switchboard-widget');
    if (!settings.inline) {
      var launcher = el('button', 'sb-launcher', 'Chat with us');
      launcher.setAttribute('type', 'button');
      launcher.setAttribute('aria-expanded', 'false');
      root.appendChild(launcher);
      UI.addClass(root, 'sb-closed');
      on(launcher, 'click', function () {
        var closed = (' ' + root.className + ' ').indexOf(' sb-closed ') !== -1;
        if (closed) { UI.removeClass(root, 'sb-closed'); } else { UI.addClass(root, 'sb-closed'); }
        launcher.setAttribute('aria-expanded', closed ? 'true' : 'false');
        setText(launcher, closed ? 'Close chat' : 'Chat with us');
        if (closed) { markRead(); }
      });
    }
    (host || document.body).appendChild(root);
    on(back, 'click', function () { showHome(); });


    function view(name, heading) {
      UI.clear(body);
      currentView = name;
      body.className = 'sb-body sb-view-' + name;
      setText(title, heading);
      back.style.display = name === 'home' || name === 'register' || name === 'wait' ? 'none' : '';
      chatId = null;
      current = null;
    }

    var problem = UI.problem;
    var field = UI.field;
    var input = UI.input;
    var button = UI.button;

    /* ---- identity ---- */
    function saveIdentity(identity) {
      me = identity;
      saved.save(identity);
    }

    function localZone() {
      try { return window.Intl.DateTimeFormat().resolvedOptions().timeZone || null; } catch (e) {
        return null;
      }
    }

    function showRegister() {
      view('register', 'Chat with a company');
      var form = el('form', 'sb-form');
      var name = input('text', 'name', { required: 'required', maxlength: '100' });
      var city = input('text', 'city', { maxlength: '100' });
      form.appendChild(el('p', 'sb-hint', 'Companies answer here. Tell them who you are:'));
      form.appendChild(field('Your name', name));
      form.appendChild(field('Your city (optional)', city));
      var go = button('Start', 'sb-button sb-primary', 'submit');
      form.appendChild(go);
      body.appendChild(form);
      name.focus();
      on(form, 'submit', function (event) {
        event.preventDefault();
        var trimmed = name.value.replace(/^\s+|\s+$/g, '');
        if (!trimmed) { name.focus(); return; }
        go.disabled = true;
        window.Switchboard.request({ base: base, path: '/v1/customers', method: 'POST',
          body: { name: trimmed, city: city.value || null, timezone: localZone() },
          mode: window.Switchboard.requestMode(base, transport) }, function (err, answer) {
          go.disabled = false;
          if (err) { form.appendChild(problem(err.message || 'Could not start, try again.')); return; }
          saveIdentity({ id: answer.id, token: answer.token, name: trimmed });
          begin();
        });
      });
    }

    /* ---- live connection ---- */
    function begin() {
      client = window.Switchboard.connect({
        base: base,
        token: me.token,
        transport: transport,
        onEvent: onEvent,
        onState: UI.showsState(status),
        onStart: function () {
          if (!started) {
            started = true;
            var wanted = /[?&]conversation=(\d+)/.exec(window.location.search);
            if (wanted) { openChat(Number(wanted[1])); }
            else if (settings.company) { showNew(settings.company); }
            else { showHome(); }
          } else if (currentView === 'chat' && chatId) {
            openChat(chatId);
          } else if (currentView === 'home') {
            showHome();
          }
        },
        onUnauthorized: function () {
          client.stop();
          saved.save(null);
          me = null;
          showRegister();
        }
      });
      root.switchboard = client;
      view('wait', 'Messages');
      body.appendChild(el('p', 'sb-empty', 'Connecting…'));
    }

    function onEvent(event) {
      var data = event.data || {};
      if (event.type === 'message.created') {
        var message = data.message;
        var mine = message.sender.side === 'customer';
        if (current && current.conversation.id === message.conversation_id) {
          current.thread.add(message);
          if (!mine) { markRead(); }
        } else if (currentView === 'home') {
          showHome();
        }
        if (!mine) { unseenWhileHidden.bump(); }
      } else if (event.type === 'conversation.read') {
        if (current && current.conversation.id === data.conversation_id && data.side === 'company') {
          current.thread.setReadUpTo(data.up_to_message_id);
        }
      } else if (event.type === 'typing') {
        if (current && current.conversation.id === data.conversation_id && data.side === 'company') {
          current.thread.showTyping(current.conversation.company.name);
        }
      } else if (event.type === 'notification') {
        UI.notify(data.title, data.body, function () { openChat(data.conversation_id); });
      } else if (event.type === 'conversation.created' && currentView === 'home') {
        showHome();
      }
    }

    /* Read means seen: the chat is open, the page visible and the panel not folded away. */
    function markRead() {
      var folded = (' ' + root.className + ' ').indexOf(' sb-closed ') !== -1;
      if (!current || folded || UI.pageHidden() || !current.thread.lastOtherId) { return; }
      if (current.thread.lastOtherId <= current.readSent) { return; }
      current.readSent = current.thread.lastOtherId;
      client.reliable('POST', '/v1/conversations/' + current.conversation.id + '/read',
        { up_to_message_id: current.readSent });
    }

    /* ---- conversation list ---- */
    function showHome() {
      view('home', 'Messages');
      var list = el('ul', 'sb-list');
      var start = button('New conversation', 'sb-button sb-primary');
      body.appendChild(start);
      body.appendChild(list);
      on(start, 'click', function () { showNew(null); });
      client.api('GET', '/v1/conversations', null, function (err, answer) {
        if (err) { body.appendChild(problem('Could not load your conversations.')); return; }
        if (!answer.conversations.length) {
          list.appendChild(el('li', 'sb-empty', 'No conversations yet. Ask a company anything.'));
        }
        for (var i = 0; i < answer.conversations.length; i++) {
          list.appendChild(conversationItem(answer.conversations[i]));
        }
      });
      pushOffer();
    }

    function conversationItem(conversation) {
      var company = conversation.other_side || conversation.company;
      return UI.conversationRow({
        title: company.name + (conversation.branch ? ' · ' + conversation.branch.name : ''),
        unread: conversation.unread_count,
        meta: UI.placeLabel(company),
        excerpt: conversation.last_message && conversation.last_message.excerpt,
        onOpen: function () { openChat(conversation.id); }
      });
    }

    /* ---- new conversation: one company (and branch) or several at once ---- */
    function showNew(companyId) {
      view('new', 'New conversation');
      var search = input('search', 'q', { placeholder: 'Company name' });
      var results = el('ul', 'sb-companies');
      var form = el('form', 'sb-form');
      var text = el('textarea', 'sb-input');
      text.setAttribute('rows', '3');
      text.setAttribute('maxlength', '4000');
      var send = button('Send', 'sb-button sb-primary', 'submit');
      body.appendChild(field('Find a company', search));
      body.appendChild(el('p', 'sb-hint sb-pad', 'Tick several companies to ask them all at once ' +
        '(a branch is chosen only when you ask one company).'));
      body.appendChild(results);
      form.appendChild(field('Your question', text));
      form.appendChild(send);
      body.appendChild(form);
      var chosen = {};

      function find() {
        client.api('GET', '/v1/companies?q=' + encodeURIComponent(search.value), null,
          function (err, answer) {
            UI.clear(results);
            if (err) { results.appendChild(problem('Search failed, try again.')); return; }
            for (var i = 0; i < answer.companies.length; i++) {
              results.appendChild(companyChoice(answer.companies[i], chosen, companyId));
            }
            if (!answer.companies.length) { results.appendChild(el('li', 'sb-empty', 'No company found.')); }
          });
      }
      var timer = null;
      on(search, 'keyup', function () { clearTimeout(timer); timer = setTimeout(find, 250); });
      find();
      search.focus();

      on(form, 'submit', function (event) {
        event.preventDefault();
        var message = text.value.replace(/^\s+|\s+$/g, '');
        var ids = [];
        for (var id in chosen) { if (chosen.hasOwnProperty(id) && chosen[id].checked) { ids.push(Number(id)); } }
        if (!ids.length) { form.appendChild(problem('Choose at least one company.')); return; }
        if (!message) { text.focus(); return; }
        send.disabled = true;
        var clientMsgId = window.Switchboard.uniqueId();
        if (ids.length === 1) {
          var branch = chosen[ids[0]].branch;
          client.reliable('POST', '/v1/conversations', { company_id: ids[0], text: message,
            branch_id: branch && branch.value ? Number(branch.value) : null,
            client_msg_id: clientMsgId }, function (err, answer) {
            send.disabled = false;
            if (err) { form.appendChild(problem(err.message)); return; }
            openChat(answer.conversation.id);
          });
        } else {
          client.reliable('POST', '/v1/conversations/batch', { company_ids: ids, text: message,
            client_msg_id: clientMsgId }, function (err, answer) {
            send.disabled = false;
            if (err) { form.appendChild(problem(err.message)); return; }
            showHome();
            for (var i = 0; i < answer.results.length; i++) {
              if (answer.results[i].error) {
                body.appendChild(problem(answer.results[i].error.message));
              }
            }
          });
        }
      });
    }

    function companyChoice(company, chosen, preselected) {
      var item = el('li', 'sb-company');
      var label = el('label', 'sb-check');
      var box = el('input', '');
      box.setAttribute('type', 'checkbox');
      box.value = String(company.id);
      if (String(company.id) === String(preselected)) { box.checked = true; box.defaultChecked = true; }
      if (!company.accepts_messages) { box.disabled = true; }
      label.appendChild(box);
      label.appendChild(el('strong', '', company.name));
      label.appendChild(el('span', 'sb-row-meta', ' ' + UI.placeLabel(company) +
        (company.accepts_messages ? '' : ' · not taking messages')));
      item.appendChild(label);
      var entry = { checked: box.checked, branch: null };
      on(box, 'click', function () { entry.checked = box.checked; });
      if (company.branches && company.branches.length) {
        var select = el('select', 'sb-branch');
        select.setAttribute('aria-label', 'Branch of ' + company.name);
        select.appendChild(el('option', '', 'Any branch'));
        select.options[0].value = '';
        for (var i = 0; i < company.branches.length; i++) {
          var option = el('option', '', company.branches[i].name + ' (' +
            UI.placeLabel(company.branches[i]) + ')');
          option.value = String(company.branches[i].id);
          select.appendChild(option);
        }
        entry.branch = select;
        item.appendChild(select);
      }
      chosen[company.id] = entry;
      return item;
    }

    /* ---- one chat ---- */
    function openChat(id) {
      view('chat', 'Chat');
      chatId = id;
      var header = el('p', 'sb-chat-place', '');
      body.appendChild(header);
      var chat = { conversation: null, readSent: 0, thread: null };
      client.api('GET', '/v1/conversations/' + id, null, function (err, answer) {
        if (err) { body.appendChild(problem(err.status === 404 ? 'This conversation is not yours.' : 'Could not open the chat.')); return; }
        var conversation = answer;
        var company = conversation.other_side || conversation.company;
        chat.conversation = conversation;
        setText(title, company.name + (conversation.branch ? ' · ' + conversation.branch.name : ''));
        function place() {
          var label = UI.placeLabel(company);
          setText(header, label ? 'Local time there: ' + label : '');
        }
        place();
        chat.clock = setInterval(function () {
          if (!header.parentNode) { clearInterval(chat.clock); return; }
          place();
        }, 30000);
        chat.thread = UI.liveThread(body, client, conversation.id, { mySide: 'customer', myName: me.name });
        chat.thread.setReadUpTo(conversation.read_up_to.company);
        current = chat;
        loadHistory(chat);
      });
    }

    function loadHistory(chat) {
      chat.thread.loadHistory(client, chat.conversation.id, function (err) {
        if (err) { body.appendChild(problem('Could not load the messages.')); return; }
        markRead();
      });
    }

    /* ---- Web Push: offered where the browser can, on the server's own origin only ---- */
    function pushOffer() {
      var able = window.navigator && navigator.serviceWorker && window.PushManager && !base &&
        window.Notification && window.Notification.permission !== 'denied';
      if (!able) { return; }
      var offer = button('Notify me on this device', 'sb-button sb-quiet');
      body.appendChild(offer);
      on(offer, 'click', function () {
        offer.disabled = true;
        window.Notification.requestPermission(function (permission) {
          if (permission !== 'granted') { setText(offer, 'Notifications are off'); return; }
          subscribePush(function (err) {
            setText(offer, err ? 'Could not turn notifications on' : 'Notifications are on');
          });
        });
      });
    }

    function subscribePush(done) {
      client.api('GET', '/v1/push/vapid-public-key', null, function (err, answer) {
        if (err) { done(err); return; }
        navigator.serviceWorker.register('sw.js').then(function (registration) {
          return registration.pushManager.subscribe({ userVisibleOnly: true,
            applicationServerKey: base64UrlBytes(answer.public_key) });
        }).then(function (subscription) {
          var json = subscription.toJSON();
          client.reliable('POST', '/v1/push-subscriptions',
            { endpoint: json.endpoint, keys: json.keys }, done);
        }, done);
      });
    }

    function base64UrlBytes(text) {
      var padded = text.replace(/-/g, '+').replace(/_/g, '/');
      while (padded.length % 4) { padded += '='; }
      var raw = window.atob(padded);
      var bytes = new window.Uint8Array(raw.length);
      for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
      return bytes;
    }

    if (me && me.token) { begin(); } else { showRegister(); }
  }
}(window, document));
