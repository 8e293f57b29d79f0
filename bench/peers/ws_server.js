'use strict';
// The WebSocket benchmark's `ws` peer: what a Node.js service written with the `ws` package does for the sessions
// notigate holds, on notigate's native protocol (so the same load client drives both):
//   - accepts GET /v1/ws?user_id=U, keeps the session in a map of the user's sessions, greets it with
//     {"type":"hello","data":{"sid","user_id","ping_interval_ms"}};
//   - pings every session every PING_INTERVAL_MS and drops one that did not answer the previous ping (the heartbeat
//     of the ws README), as the gateway does; ws answers the clients' pings by itself;
//   - {"type":"join","username","room"} puts the session in a room (a Set) and answers {"type":"joined",...};
//     {"type":"send_message","message"} broadcasts {"type":"new_message","data":{sender,message,timestamp,room}}
//     to every session of the room, the sender too. No presence lists: the benchmark times the broadcast only.
//
// Environment: PORT, PING_INTERVAL_MS (default 25000).
const http = require('http');
const crypto = require('crypto');
const { WebSocketServer } = require('ws');
const { env, USER_ID_RE } = require('./lib');

const port = Number(env('PORT'));
const pingInterval = Number(env('PING_INTERVAL_MS', '25000'));

const server = http.createServer((req, res) => {
  res.writeHead(req.url === '/healthz' ? 200 : 404, { 'content-type': 'application/json' });
  res.end(req.url === '/healthz' ? '{"ok":true}' : '{"error":{"code":"not_found","message":"no such route"}}');
});
const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, perMessageDeflate: false });
const users = new Map(); // user id -> Set of sockets
const rooms = new Map(); // room -> Set of sockets

server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://x');
  const user = url.searchParams.get('user_id');
  if (url.pathname !== '/v1/ws' || (user !== null && !USER_ID_RE.test(user))) {
    socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => onSession(ws, user));
});

function leave(ws) {
  if (ws.room === undefined) return;
  const set = rooms.get(ws.room);
  set.delete(ws);
  if (set.size === 0) rooms.delete(ws.room);
  ws.room = undefined;
}

function onSession(ws, user) {
  ws.alive = true;
  ws.user = user;
  if (user !== null) {
    let set = users.get(user);
    if (set === undefined) users.set(user, (set = new Set()));
    set.add(ws);
  }
  ws.on('pong', () => { ws.alive = true; });
  ws.on('message', (data, isBinary) => {
    ws.alive = true;
    let msg;
    try {
      msg = JSON.parse(data.toString());
    } catch {
      msg = null;
    }
    if (isBinary || msg === null || typeof msg !== 'object') {
      ws.send('{"type":"error","data":{"code":"invalid_json","message":"frames must be JSON objects"}}');
      return;
    }
    if (msg.type === 'join' && typeof msg.username === 'string') {
      leave(ws);
      ws.username = msg.username;
      ws.room = typeof msg.room === 'string' && msg.room !== '' ? msg.room : 'lobby';
      let set = rooms.get(ws.room);
      if (set === undefined) rooms.set(ws.room, (set = new Set()));
      set.add(ws);
      ws.send(JSON.stringify({ type: 'joined', data: { room: ws.room, username: ws.username } }));
    } else if (msg.type === 'send_message' && typeof msg.message === 'string' && ws.room !== undefined) {
      const frame = JSON.stringify({ type: 'new_message',
        data: { sender: ws.username, message: msg.message, timestamp: new Date().toISOString(), room: ws.room } });
      for (const peer of rooms.get(ws.room)) peer.send(frame);
    } else if (msg.type === 'ping') {
      ws.send('{"type":"pong"}');
    } else {
      ws.send('{"type":"error","data":{"code":"unknown_type","message":"type must be join, send_message or ping"}}');
    }
  });
  ws.on('close', () => {
    leave(ws);
    if (ws.user !== null) {
      const set = users.get(ws.user);
      set.delete(ws);
      if (set.size === 0) users.delete(ws.user);
    }
  });
  ws.on('error', () => {});
  ws.send(JSON.stringify({ type: 'hello',
    data: { sid: crypto.randomBytes(15).toString('base64url'), user_id: user, ping_interval_ms: pingInterval } }));
}

const heartbeat = setInterval(() => {
  for (const ws of wss.clients) {
    if (!ws.alive) {
      ws.terminate();
      continue;
    }
    ws.alive = false;
    ws.ping();
  }
}, pingInterval);

server.listen(port, '127.0.0.1', () => console.log(`ws peer listening on 127.0.0.1:${port}`));
const stop = () => {
  clearInterval(heartbeat);
  for (const ws of wss.clients) ws.terminate();
  server.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
