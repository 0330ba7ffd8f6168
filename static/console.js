/*
 * The operator console: sign in, see the company's conversations (oldest unanswered first,
 * with the client's city and local time up front), answer, mark read, and hear about new
 * messages. Plain ES3, like switchboard.js.
 */
(function (window, document) {
  var UI = window.SwitchboardUI;
  var el = UI.el;
  var on = UI.on;
  var setText = UI.setText;
  var problem = UI.problem;
  var labelled = UI.field;
  // Signed in per tab: closing it signs out.
  var saved = new UI.Saved('sessionStorage', 'switchboard.operator');
  var transport = window.Switchboard.transportFromLocation() || 'auto';

  var session = null;       // {token, operator}
  var client = null;
  var company = null;       // the operator's company, with branches
  var branchFilter = '';
  var current = null;       // the open chat: {conversation, thread, readSent}
  var chatId = null;        // the chat on screen (also while it loads)
  var unseenWhileHidden = new UI.HiddenCounter(function () { markRead(); });
  var refreshTimer = null;

  var root = document.getElementById('console');
  var status = document.getElementById('connection');
  var heading = document.getElementById('company');
  var signOut = document.getElementById('sign-out');

  /* ---- sign in ---- */
  function showLogin(message) {
    UI.clear(root);
    root.className = 'sb-console sb-signed-out';
    signOut.style.display = 'none';
    setText(heading, 'Operator console');
    var form = el('form', 'sb-form sb-login');
    var email = UI.input('email', 'email', { autocomplete: 'username', required: 'required' });
    var password = UI.input('password', 'password',
      { autocomplete: 'current-password', required: 'required' });
    form.appendChild(el('h2', '', 'Sign in'));
    form.appendChild(labelled('E-mail', email));
    form.appendChild(labelled('Password', password));
    var go = UI.button('Sign in', 'sb-button sb-primary', 'submit');
    form.appendChild(go);
    if (message) { form.appendChild(problem(message)); }
    root.appendChild(form);
    email.focus();
    on(form, 'submit', function (event) {
      event.preventDefault();
      go.disabled = true;
      window.Switchboard.request({ base: '', path: '/v1/operators/login', method: 'POST',
        body: { email: email.value, password: password.value },
        mode: window.Switchboard.requestMode('', transport) }, function (err, answer) {
        go.disabled = false;
        if (err) {
          form.appendChild(problem(err.status === 401 ? 'Wrong e-mail or password.' : err.message));
          return;
        }
        session = { token: answer.token, operator: answer.operator };
        saved.save(session);
        begin();
      });
    });
  }

  /* ---- the console ---- */
  var listPane, listNode, chatPane, filterNode;

  function begin() {
    UI.clear(root);
    root.className = 'sb-console';
    signOut.style.display = '';
    listPane = el('nav', 'sb-list-pane');
    listPane.setAttribute('aria-label', 'Conversations');
    filterNode = el('div', 'sb-filter');
    listNode = el('ul', 'sb-list');
    listPane.appendChild(filterNode);
    listPane.appendChild(listNode);
    chatPane = el('section', 'sb-chat-pane');
    chatPane.setAttribute('aria-label', 'Conversation');
    chatPane.appendChild(el('p', 'sb-empty', 'Choose a conversation.'));
    root.appendChild(listPane);
    root.appendChild(chatPane);

    client = window.Switchboard.connect({
      base: '',
      token: session.token,
      transport: transport,
      onEvent: onEvent,
      onState: UI.showsState(status),
      onStart: function () {
        refreshList();
        if (chatId) { openChat(chatId); }
      },
      onUnauthorized: function () { logout('Your session ended; sign in again.'); }
    });
    client.api('GET', '/v1/companies/' + session.operator.company_id, null, function (err, answer) {
      if (err) { return; }
      company = answer;
      setText(heading, company.name);
      branchChoice();
    });
    // The chat in the address (a link from an e-mail or a push) opens once the client starts.
    var wanted = /[?&]conversation=(\d+)/.exec(window.location.search);
    chatId = wanted ? Number(wanted[1]) : null;
    // Clocks and waiting times move on their own.
    setInterval(function () { if (client) { renderList(lastList); } }, 30000);
  }

  function logout(message) {
    if (client) { client.stop(); }
    client = null;
    session = null;
    current = null;
    chatId = null;
    saved.save(null);
    showLogin(message);
  }
  on(signOut, 'click', function () { logout(); });

  /* Operators of a branch company choose which branch's chats they see. */
  function branchChoice() {
    UI.clear(filterNode);
    var mine = session.operator.branch_ids || [];
    var branches = [];
    for (var i = 0; i < company.branches.length; i++) {
      var branch = company.branches[i];
      var allowed = !mine.length;
      for (var j = 0; j < mine.length; j++) { if (mine[j] === branch.id) { allowed = true; } }
      if (allowed) { branches.push(branch); }
    }
    if (!branches.length) { return; }
    var select = el('select', 'sb-branch');
    select.setAttribute('aria-label', 'Branch');
    select.appendChild(el('option', '', mine.length ? 'All my branches' : 'All branches'));
    select.options[0].value = '';
    for (var k = 0; k < branches.length; k++) {
      var option = el('option', '', branches[k].name);
      option.value = String(branches[k].id);
      select.appendChild(option);
    }
    filterNode.appendChild(labelled('Branch', select));
    on(select, 'change', function () { branchFilter = select.value; refreshList(); });
  }

  /* ---- conversation list ---- */
  var lastList = [];

  function refreshList() {
    clearTimeout(refreshTimer);
    refreshTimer = null;
    var path = '/v1/conversations' + (branchFilter ? '?branch_id=' + branchFilter : '');
    client.api('GET', path, null, function (err, answer) {
      if (err) { return; }
      lastList = answer.conversations;
      renderList(lastList);
    });
  }

  function refreshSoon() {
    if (!refreshTimer) { refreshTimer = setTimeout(refreshList, 250); }
  }

  /* Oldest unanswered first; then the most recently active. */
  function byUrgency(a, b) {
    var wa = a.awaiting_reply_since;
    var wb = b.awaiting_reply_since;
    if (wa && wb) { return wa - wb; }
    if (wa) { return -1; }
    if (wb) { return 1; }
    return (b.last_message_at || 0) - (a.last_message_at || 0);
  }

  function renderList(conversations) {
    if (!listNode) { return; }
    var sorted = conversations.slice(0).sort(byUrgency);
    UI.clear(listNode);
    if (!sorted.length) { listNode.appendChild(el('li', 'sb-empty', 'No conversations yet.')); }
    for (var i = 0; i < sorted.length; i++) { listNode.appendChild(listItem(sorted[i])); }
  }

  function clientLabel(conversation) {
    var customer = conversation.other_side || conversation.customer;
    var place = UI.placeLabel(customer);
    return customer.name + (place ? ' (' + place + ')' : '');
  }

  function listItem(conversation) {
    var meta = [];
    if (conversation.branch) { meta.push(conversation.branch.name); }
    if (conversation.awaiting_reply_since) {
      meta.push('waiting ' + UI.waitingSince(conversation.awaiting_reply_since));
    }
    return UI.conversationRow({
      title: clientLabel(conversation),
      unread: conversation.unread_count,
      meta: meta.join(' · '),
      urgent: !!conversation.awaiting_reply_since,
      excerpt: conversation.last_message && conversation.last_message.excerpt,
      selected: !!current && current.conversation.id === conversation.id,
      onOpen: function () { openChat(conversation.id); }
    });
  }

  /* ---- live events ---- */
  function onEvent(event) {
    var data = event.data || {};
    if (event.type === 'message.created') {
      var message = data.message;
      var fromClient = message.sender.side === 'customer';
      if (current && current.conversation.id === message.conversation_id) {
        current.thread.add(message);
        if (fromClient) { markRead(); }
      }
      if (fromClient) { cue(); }
      refreshSoon();
    } else if (event.type === 'conversation.read') {
      if (current && current.conversation.id === data.conversation_id && data.side === 'customer') {
        current.thread.setReadUpTo(data.up_to_message_id);
      }
      refreshSoon();
    } else if (event.type === 'conversation.created') {
      cue();
      refreshSoon();
    } else if (event.type === 'typing') {
      if (current && current.conversation.id === data.conversation_id && data.side === 'customer') {
        current.thread.showTyping(current.customerName);
      }
    } else if (event.type === 'notification') {
      UI.notify(data.title, data.body, function () { openChat(data.conversation_id); });
    }
  }

  /* A sound and a visible count in the tab title for a new client message. */
  function cue() {
    UI.beep();
    UI.addClass(document.body, 'sb-flash');
    setTimeout(function () { UI.removeClass(document.body, 'sb-flash'); }, 1200);
    unseenWhileHidden.bump();
  }

  function markRead(force) {
    if (!current || !current.thread || (UI.pageHidden() && !force)) { return; }
    var upTo = current.thread.lastOtherId;
    if (!upTo || upTo <= current.readSent) { return; }
    current.readSent = upTo;
    client.reliable('POST', '/v1/conversations/' + current.conversation.id + '/read',
      { up_to_message_id: upTo }, function () { refreshSoon(); });
  }

  /* ---- one chat ---- */
  function openChat(id) {
    chatId = id;
    UI.clear(chatPane);
    var chat = { conversation: null, thread: null, readSent: 0, customerName: 'Client' };
    current = null;
    client.api('GET', '/v1/conversations/' + id, null, function (err, conversation) {
      if (err) { chatPane.appendChild(problem('Could not open this conversation.')); return; }
      chat.conversation = conversation;
      var customer = conversation.other_side || conversation.customer;
      chat.customerName = customer.name;
      var header = el('header', 'sb-chat-head');
      var who = el('h2', 'sb-client', clientLabel(conversation));
      header.appendChild(who);
      if (conversation.branch) { header.appendChild(el('span', 'sb-row-meta', conversation.branch.name)); }
      var read = UI.button('Mark read', 'sb-button sb-quiet');
      on(read, 'click', function () { markRead(true); });
      header.appendChild(read);
      chatPane.appendChild(header);
      chat.clock = setInterval(function () {
        if (!who.parentNode) { clearInterval(chat.clock); return; }
        setText(who, clientLabel(conversation));
      }, 30000);
      chat.thread = UI.liveThread(chatPane, client, conversation.id,
        { mySide: 'company', myName: session.operator.name, onSent: refreshSoon });
      chat.thread.setReadUpTo(conversation.read_up_to.customer);
      current = chat;
      renderList(lastList);
      chat.thread.loadHistory(client, id, function (e) {
        if (e) { chatPane.appendChild(problem('Could not load the messages.')); return; }
        markRead();
      });
      chat.thread.input.focus();
    });
  }

  session = saved.load();
  if (session && session.token) { begin(); } else { showLogin(); }
}(window, document));
