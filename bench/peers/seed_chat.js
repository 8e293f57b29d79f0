'use strict';
// The seed article's Socket.IO chat server, as its readers run it (express, http, socket.io from npm; one room,
// everyone; presence broadcast on every join and disconnect). Only the port comes from the environment (PORT) and it
// listens on 127.0.0.1; the handlers are the article's.
const express = require('express');
const http = require('http');
const { Server } = require('socket.io');

const app = express();
const server = http.createServer(app);
const io = new Server(server, { cors: { origin: '*', methods: ['GET', 'POST'] } });
const onlineUsers = new Map();

app.get('/healthz', (req, res) => res.json({ ok: true }));

io.on('connection', (socket) => {
  console.log(`User connected: ${socket.id}`);
  socket.on('join', (username) => {
    onlineUsers.set(socket.id, username);
    socket.broadcast.emit('user_joined', username);
    io.emit('online_users', Array.from(onlineUsers.values()));
  });
  socket.on('send_message', (data) => {
    const sender = onlineUsers.get(socket.id);
    io.emit('new_message', { sender, message: data.message, timestamp: new Date().toISOString() });
  });
  socket.on('disconnect', () => {
    const username = onlineUsers.get(socket.id);
    onlineUsers.delete(socket.id);
    socket.broadcast.emit('user_left', username);
    io.emit('online_users', Array.from(onlineUsers.values()));
  });
});

server.listen(Number(process.env.PORT || 3000), '127.0.0.1', () =>
  console.log(`Chat server running at http://127.0.0.1:${process.env.PORT || 3000}`));
// exit at once: io.close() would run the disconnect handler of every socket, each broadcasting to all the others
const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
