// The demo page: chat over the native WebSocket protocol (/v1/ws), live notifications for one user, and the merged
// list from the REST API beside them. Reconnects with since=<last id> so that nothing published meanwhile is missed.
// With the gateway's auth on, open it as /?token=<the user's token>[&publish_token=<a publisher's token>]: the token
// goes with the WebSocket (its query: browsers cannot set headers there) and with every API call.
'use strict';

const $ = (id) => document.getElementById(id);
let ws = null, userId = '', lastId = 0, joined = null, retry = 500;
const params = new URLSearchParams(location.search);
const token = params.get('token') || '';
const publishToken = params.get('publish_token') || token;
const bearer = (t) => (t ? {authorization: `Bearer ${t}`} : {});

// The token's user (its sub), to fill in the user to follow; '' if there is none.
function tokenUser(t) {
  try {
    return JSON.parse(atob(t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).sub || '';
  } catch {
    return '';
  }
}

function item(list, html, cls) {
  const li = document.createElement('li');
  if (cls) li.className = cls;
  li.append(...html);
  list.prepend(li);
  while (list.children.length > 200) list.lastChild.remove();
  return li;
}

function text(s, cls) {
  const span = document.createElement('span');
  span.textContent = s;
  if (cls) span.className = cls;
  return span;
}

function setStatus(on, detail) {
  $('status').textContent = on ? 'connected' : 'disconnected';
  $('status').className = on ? 'on' : '';
  $('sid').textContent = detail || '';
  $('send').disabled = !(on && joined);
}

function connect() {
  if (ws) { ws.onclose = null; ws.close(); }
  const q = new URLSearchParams();
  if (userId) q.set('user_id', userId);
  if (userId && lastId) q.set('since', lastId);
  if (token) q.set('token', token);
  let url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`;
  if (q.toString() !== '') url += `?${q}`;
  ws = new WebSocket(url);
  ws.onopen = () => { retry = 500; };
  ws.onmessage = (ev) => onFrame(JSON.parse(ev.data));
  ws.onclose = () => {
    setStatus(false);
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 5000);
  };
}

function onFrame(f) {
  switch (f.type) {
  case 'hello':
    setStatus(true, `session ${f.data.sid}` + (f.data.user_id ? ` · user ${f.data.user_id}` : ''));
    if (joined) ws.send(JSON.stringify({type: 'join', username: joined.username, room: joined.room}));
    break;
  case 'notification':
    lastId = Math.max(lastId, f.data.id);
    item($('live'), [text(f.data.message), text(` #${f.data.id} · ${f.data.kind}`, 'meta')], 'live');
    refreshMerged();
    break;
  case 'joined':
    joined = {username: f.data.username, room: f.data.room};
    showOnline(f.data.online_users, f.data.online_count);
    $('send').disabled = false;
    item($('messages'), [text(`you joined ${f.data.room}`, 'meta')]);
    break;
  case 'online_users':
    showOnline(f.data, f.count);
    break;
  case 'user_joined':
    item($('messages'), [text(`${f.data} joined`, 'meta')]);
    break;
  case 'user_left':
    item($('messages'), [text(`${f.data} left`, 'meta')]);
    break;
  case 'new_message':
    item($('messages'), [text(f.data.sender + ': ', 'meta'), text(f.data.message)]);
    break;
  case 'error':
    item($('messages'), [text(`${f.data.code}: ${f.data.message}`, 'error')]);
    break;
  }
}

// names: everyone, or in a big room (over the gateway's --presence-full-max) the first ones, with count
function showOnline(names, count) {
  const more = count !== undefined && count > names.length ? ` and ${count - names.length} more` : '';
  $('online').textContent = names.join(', ') + more;
}

async function refreshMerged() {
  if (!userId) return;
  const r = await fetch(`/v1/users/${encodeURIComponent(userId)}/notifications?limit=20`, {headers: bearer(token)});
  const body = await r.json();
  if (!r.ok) {
    $('merged-meta').textContent = `error ${r.status}: ${body.error.message}`;
    return;
  }
  const list = $('merged');
  list.replaceChildren();
  for (const n of [...body.realtime].reverse()) item(list, [text(n.message), text(` #${n.id} realtime`, 'meta')], 'live');
  for (const n of [...body.historical].reverse())
    item(list, [text(n.message), text(` #${n.id}${n.read ? ' read' : ''}`, 'meta')], n.read ? 'read' : '');
  $('merged-meta').textContent = `unread ${body.unread_count ?? '?'}` + (body.partial ? ' · partial' : '');
}

$('join-form').onsubmit = (e) => {
  e.preventDefault();
  ws.send(JSON.stringify({type: 'join', username: $('username').value, room: $('room').value || undefined}));
};
$('send-form').onsubmit = (e) => {
  e.preventDefault();
  ws.send(JSON.stringify({type: 'send_message', message: $('message').value}));
  $('message').value = '';
};
$('user-form').onsubmit = (e) => {
  e.preventDefault();
  userId = $('user-id').value.trim();
  lastId = 0;
  $('live').replaceChildren();
  if (!$('publish-user').value) $('publish-user').value = userId;
  if (token && !$('user-id').value) $('user-id').value = tokenUser(token);
connect();
  refreshMerged();
};
$('publish-form').onsubmit = async (e) => {
  e.preventDefault();
  const r = await fetch('/v1/notifications', {
    method: 'POST',
    headers: {'content-type': 'application/json', ...bearer(publishToken)},
    body: JSON.stringify({user_id: $('publish-user').value.trim(), message: $('publish-message').value}),
  });
  const body = await r.json();
  $('publish-result').textContent = r.ok ? `published #${body.id}` : `error ${r.status}: ${body.error.message}`;
  if (r.ok) $('publish-message').value = '';
};

if (token && !$('user-id').value) $('user-id').value = tokenUser(token);
connect();
