'use strict';
// What the Node.js peers share: settings from the environment, the page script, and the merge of a realtime list with
// a page of history, written after notigate's (gateway/merge.c) so that every target returns the same JSON.
const fs = require('fs');
const path = require('path');

const PAGE_LUA = fs.readFileSync(path.join(__dirname, 'page.lua'), 'utf8');
const PAGE_LIMIT = 20; // notigate's default page size (GET /hybrid/notifications has no limit parameter)
const USER_ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;

function env(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (fallback === undefined) throw new Error(`${name} is not set`);
    return fallback;
  }
  return v;
}

// The page script's reply {unread, more, n, n unread ids, record, ...} (records "id\tts\tkind\tmessage") as
// notifications, newest first.
function parsePage(userId, reply) {
  const n = Number(reply[2]);
  const unread = new Set(reply.slice(3, 3 + n).map(Number));
  const items = [];
  for (let i = 3 + n; i < reply.length; i++) {
    const rec = reply[i];
    const t1 = rec.indexOf('\t'), t2 = rec.indexOf('\t', t1 + 1), t3 = rec.indexOf('\t', t2 + 1);
    const id = Number(rec.slice(0, t1));
    items.push({
      id,
      user_id: userId,
      message: rec.slice(t3 + 1),
      kind: rec.slice(t2 + 1, t3),
      ts: Number(rec.slice(t1 + 1, t2)),
      read: !unread.has(id),
    });
  }
  return { unread: Number(reply[0]), more: Number(reply[1]) === 1, items };
}

// realtime: the realtime service's list (newest first); page: parsePage's result. As gateway/merge.c with before = 0:
// realtime keeps what is not older than the page's last item and not read since; historical is the rest of the page.
function merge(realtime, page) {
  const H = page.items;
  const lower = page.more && H.length > 0 ? H[H.length - 1].id : 0;
  const outRealtime = [];
  const outHistorical = [];
  let j = 0;
  for (const r of realtime) {
    if (r.id < lower) continue;
    while (j < H.length && H[j].id > r.id) outHistorical.push(H[j++]);
    if (j < H.length && H[j].id === r.id) {
      if (H[j].read) {
        outHistorical.push(H[j++]);
        continue;
      }
      ++j;
    }
    outRealtime.push(r);
  }
  while (j < H.length) outHistorical.push(H[j++]);
  return { realtime: outRealtime, historical: outHistorical };
}

module.exports = { PAGE_LUA, PAGE_LIMIT, USER_ID_RE, env, parsePage, merge };
