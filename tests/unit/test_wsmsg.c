/*
 * Unit tests of gateway/wsmsg.c: the parsing and checks of what WebSocket clients send, in the native protocol
 * (native_parse) and in Engine.IO / Socket.IO (sio_parse_packet, sio_parse_auth, sio_parse_event): every message
 * kind, every error code with its precedence, the defaults (room) and the bounds (username, ack id, namespace).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wsmsg.h"

static bool eq(const char *s, size_t len, const char *want)
{
    return s != NULL && len == strlen(want) && memcmp(s, want, len) == 0;
}

/* ---- usernames ----------------------------------------------------------------------------------------------- */

START_TEST(usernames)
{
    char name[WSMSG_NAME_MAX + 2];
    memset(name, 'a', sizeof(name));
    ck_assert(wsmsg_valid_username("alice", 5));
    ck_assert(wsmsg_valid_username("Zoë 😀 a b", strlen("Zoë 😀 a b"))); /* UTF-8 and spaces */
    ck_assert(wsmsg_valid_username(name, WSMSG_NAME_MAX));
    ck_assert(!wsmsg_valid_username(name, WSMSG_NAME_MAX + 1));
    ck_assert(!wsmsg_valid_username("", 0));
    ck_assert(!wsmsg_valid_username("a\tb", 3));
    ck_assert(!wsmsg_valid_username("a\x7f", 2));
    ck_assert(!wsmsg_valid_username("a\0b", 3));
    ck_assert(!wsmsg_valid_username("\xc3\x28", 2)); /* invalid UTF-8 */
}
END_TEST

/* ---- native ------------------------------------------------------------------------------------------------------ */

/* Parses a native message and asserts it is refused with code. */
static void native_refused(const char *data, const char *code)
{
    native_msg_t m;
    ck_assert_msg(native_parse(&m, data, strlen(data)) == NATIVE_MSG_ERROR, "accepted: %s", data);
    ck_assert_msg(m.kind == NATIVE_MSG_ERROR && m.code != NULL && strcmp(m.code, code) == 0, "%s: code %s, expected %s", data,
                  m.code != NULL ? m.code : "(none)", code);
    ck_assert(m.error != NULL && m.error[0] != '\0');
    native_msg_dispose(&m);
}

START_TEST(native_kinds)
{
    native_msg_t m;
    const char *join = "{\"type\":\"join\",\"username\":\"alice\",\"room\":\"r1\"}";
    ck_assert_int_eq(native_parse(&m, join, strlen(join)), NATIVE_MSG_JOIN);
    ck_assert(eq(m.join.username, m.join.username_len, "alice") && eq(m.join.room, m.join.room_len, "r1"));
    native_msg_dispose(&m);
    native_msg_dispose(&m); /* twice: harmless */

    const char *send = "{\"message\":\"hi \\\"you\\\" \\u00e9\",\"type\":\"send_message\"}";
    ck_assert_int_eq(native_parse(&m, send, strlen(send)), NATIVE_MSG_SEND_MESSAGE);
    ck_assert(eq(m.message, m.message_len, "hi \"you\" \xc3\xa9"));
    native_msg_dispose(&m);

    ck_assert_int_eq(native_parse(&m, "{\"type\":\"leave\"}", 16), NATIVE_MSG_LEAVE);
    native_msg_dispose(&m);
    ck_assert_int_eq(native_parse(&m, "{\"type\":\"ping\",\"x\":[1]}", 23), NATIVE_MSG_PING); /* other fields ignored */
    native_msg_dispose(&m);
}
END_TEST

START_TEST(native_default_room)
{
    static const char *const joins[] = {"{\"type\":\"join\",\"username\":\"bob\"}",
                                        "{\"type\":\"join\",\"username\":\"bob\",\"room\":null}",
                                        "{\"type\":\"join\",\"username\":\"bob\",\"room\":\"\"}"};
    for (size_t i = 0; i < sizeof(joins) / sizeof(joins[0]); ++i) {
        native_msg_t m;
        ck_assert_int_eq(native_parse(&m, joins[i], strlen(joins[i])), NATIVE_MSG_JOIN);
        ck_assert_msg(eq(m.join.room, m.join.room_len, WSMSG_DEFAULT_ROOM), "%s", joins[i]);
        native_msg_dispose(&m);
    }
}
END_TEST

START_TEST(native_errors)
{
    native_refused("", "invalid_json");
    native_refused("not json", "invalid_json");
    native_refused("[\"join\"]", "invalid_json");
    native_refused("{\"type\":\"ping\"} x", "invalid_json");                  /* trailing bytes */
    native_refused("{\"type\":\"ping\",\"type\":\"leave\"}", "invalid_json"); /* duplicate keys */
    native_refused("{\"type\":\"\xff\"}", "invalid_json");                    /* invalid UTF-8 */
    native_refused("{}", "invalid_type");
    native_refused("{\"type\":1}", "invalid_type");
    native_refused("{\"type\":\"nope\"}", "unknown_type");
    native_refused("{\"type\":\"join\\u0000x\",\"username\":\"a\"}", "invalid_json"); /* jansson refuses \u0000 */
    native_refused("{\"type\":\"pin\"}", "unknown_type");
    native_refused("{\"type\":\"join\"}", "invalid_username");
    native_refused("{\"type\":\"join\",\"username\":7}", "invalid_username");
    native_refused("{\"type\":\"join\",\"username\":\"a\",\"room\":5}", "invalid_username");
    native_refused("{\"type\":\"join\",\"username\":\"\"}", "invalid_username");
    native_refused("{\"type\":\"join\",\"username\":\"a\\nb\"}", "invalid_username");
    native_refused("{\"type\":\"join\",\"username\":\"a\\u0000\"}", "invalid_json");
    native_refused("{\"type\":\"join\",\"username\":\"a\",\"room\":\"a room\"}", "invalid_room");
    native_refused("{\"type\":\"join\",\"username\":\"\",\"room\":\"a room\"}", "invalid_username"); /* username first */
    native_refused("{\"type\":\"send_message\"}", "invalid_message");
    native_refused("{\"type\":\"send_message\",\"message\":null}", "invalid_message");
}
END_TEST

/* ---- Engine.IO / Socket.IO packets -------------------------------------------------------------------------- */

static sio_packet_t packet(const char *frame, sio_kind_t want)
{
    sio_packet_t p;
    sio_kind_t k = sio_parse_packet(&p, frame, strlen(frame));
    ck_assert_msg(k == want && p.kind == want, "%s: kind %d, expected %d (%s)", frame, k, want, p.error != NULL ? p.error : "");
    return p;
}

static void packet_refused(const char *frame, const char *code)
{
    sio_packet_t p = packet(frame, SIO_PKT_ERROR);
    ck_assert_msg(p.code != NULL && strcmp(p.code, code) == 0 && p.error != NULL, "%s: code %s", frame, p.code);
}

START_TEST(sio_engineio)
{
    packet("", SIO_PKT_IGNORE);
    packet("1", SIO_PKT_CLOSE);
    packet("2", SIO_PKT_PING);
    packet("2probe", SIO_PKT_PING);
    packet("3", SIO_PKT_IGNORE);
    packet("5", SIO_PKT_IGNORE);
    packet("6", SIO_PKT_IGNORE);
    packet_refused("0", "invalid_packet");
    packet_refused("9", "invalid_packet");
    packet_refused("4", "invalid_packet");
}
END_TEST

START_TEST(sio_socketio)
{
    sio_packet_t p = packet("40", SIO_PKT_CONNECT);
    ck_assert(p.ack_id == -1 && p.payload_len == 0);
    p = packet("40{\"user_id\":\"u\"}", SIO_PKT_CONNECT);
    ck_assert(eq(p.payload, p.payload_len, "{\"user_id\":\"u\"}"));
    p = packet("40/,{}", SIO_PKT_CONNECT); /* "/" is the default namespace */
    ck_assert(eq(p.payload, p.payload_len, "{}"));
    p = packet("40/admin,{}", SIO_PKT_CONNECT_OTHER);
    ck_assert(eq(p.nsp, p.nsp_len, "/admin"));
    p = packet("40/admin", SIO_PKT_CONNECT_OTHER);
    ck_assert(eq(p.nsp, p.nsp_len, "/admin") && p.payload_len == 0);
    p = packet("42[\"leave\"]", SIO_PKT_EVENT);
    ck_assert(p.ack_id == -1 && eq(p.payload, p.payload_len, "[\"leave\"]"));
    p = packet("4217[\"leave\"]", SIO_PKT_EVENT);
    ck_assert(p.ack_id == 17 && eq(p.payload, p.payload_len, "[\"leave\"]"));
    p = packet("42/,0[\"leave\"]", SIO_PKT_EVENT);
    ck_assert(p.ack_id == 0);
    p = packet("42/chat,5[\"leave\"]", SIO_PKT_EVENT_OTHER);
    ck_assert(p.ack_id == 5);
    p = packet("42999999999999[\"leave\"]", SIO_PKT_EVENT); /* 12 digits: the largest ack id */
    ck_assert(p.ack_id == WSMSG_ACK_ID_MAX);
    packet("41", SIO_PKT_CLOSE);
    packet("41/", SIO_PKT_CLOSE);
    packet("41/chat,", SIO_PKT_IGNORE);
    packet("43[1]", SIO_PKT_IGNORE);
    packet_refused("45", "unsupported");
    packet_refused("46", "unsupported");
    packet_refused("47", "invalid_packet");
    packet_refused("4x", "invalid_packet");
}
END_TEST

/* An ack id has at most 12 digits. The handler used to stop reading digits past 10^12 and take the rest as the start of
 * the JSON payload, so that the client's ack id and the one answered differed (fuzz_socketio's round trip checks it). */
START_TEST(sio_ack_id_bound)
{
    packet_refused("421234567890123[\"leave\"]", "invalid_packet");
    packet_refused("40/,0000000000000", "invalid_packet");
}
END_TEST

/* A namespace the server names back in its CONNECT_ERROR must be printable ASCII (a text frame carries it). */
START_TEST(sio_namespace_echo)
{
    packet_refused("40/\x01\xff,", "invalid_packet");
    packet_refused("40/a\nb,", "invalid_packet");
    char frame[WSMSG_NSP_MAX + 8];
    snprintf(frame, sizeof(frame), "40/%0*d,", WSMSG_NSP_MAX - 1, 0); /* 128 characters with the slash */
    sio_packet_t p = packet(frame, SIO_PKT_CONNECT_OTHER);
    ck_assert_int_eq(p.nsp_len, WSMSG_NSP_MAX);
    snprintf(frame, sizeof(frame), "40/%0*d,", WSMSG_NSP_MAX, 0);
    packet_refused(frame, "invalid_packet");
}
END_TEST

/* ---- CONNECT auth ------------------------------------------------------------------------------------------------- */

static void auth_refused(const char *payload)
{
    sio_auth_t a;
    ck_assert_msg(sio_parse_auth(&a, payload, strlen(payload)) == -1, "accepted: %s", payload);
    ck_assert(a.error != NULL && a.user == NULL);
    sio_auth_dispose(&a);
}

START_TEST(sio_auth)
{
    sio_auth_t a;
    ck_assert_int_eq(sio_parse_auth(&a, "", 0), 0);
    ck_assert(a.user == NULL && !a.has_since);
    sio_auth_dispose(&a);
    const char *s = "{\"user_id\":\"alice\",\"since\":42,\"token\":\"x\"}";
    ck_assert_int_eq(sio_parse_auth(&a, s, strlen(s)), 0);
    ck_assert(eq(a.user, a.user_len, "alice") && a.has_since && a.since == 42);
    sio_auth_dispose(&a);
    s = "{\"user_id\":null,\"since\":null}";
    ck_assert_int_eq(sio_parse_auth(&a, s, strlen(s)), 0);
    ck_assert(a.user == NULL && !a.has_since);
    sio_auth_dispose(&a);
    s = "{\"since\":0}";
    ck_assert_int_eq(sio_parse_auth(&a, s, strlen(s)), 0);
    ck_assert(a.user == NULL && a.has_since && a.since == 0);
    sio_auth_dispose(&a);

    auth_refused("[]");
    auth_refused("null");
    auth_refused("{");
    auth_refused("{\"user_id\":\"bad id\"}");
    auth_refused("{\"user_id\":5}");
    auth_refused("{\"user_id\":\"\"}");
    auth_refused("{\"user_id\":\"alice\",\"since\":-1}");
    auth_refused("{\"since\":1.0}");
    auth_refused("{\"since\":\"3\"}");
}
END_TEST

/* ---- events ---------------------------------------------------------------------------------------------------------- */

static sio_event_t event(const char *payload, sio_event_kind_t want)
{
    sio_event_t ev;
    sio_event_kind_t k = sio_parse_event(&ev, payload, strlen(payload));
    ck_assert_msg(k == want && ev.kind == want, "%s: kind %d, expected %d (%s)", payload, k, want, ev.code != NULL ? ev.code : "");
    return ev;
}

static void event_refused(const char *payload, const char *code)
{
    sio_event_t ev = event(payload, SIO_EV_ERROR);
    ck_assert_msg(strcmp(ev.code, code) == 0 && ev.error != NULL, "%s: code %s, expected %s", payload, ev.code, code);
    sio_event_dispose(&ev);
}

START_TEST(sio_events)
{
    sio_event_t ev = event("[\"join\",\"alice\"]", SIO_EV_JOIN);
    ck_assert(eq(ev.join.username, ev.join.username_len, "alice") && eq(ev.join.room, ev.join.room_len, "lobby"));
    sio_event_dispose(&ev);
    ev = event("[\"join\",{\"username\":\"alice\",\"room\":\"r2\"}]", SIO_EV_JOIN);
    ck_assert(eq(ev.join.room, ev.join.room_len, "r2"));
    sio_event_dispose(&ev);
    ev = event("[\"join\",{\"username\":\"alice\",\"room\":null}]", SIO_EV_JOIN);
    ck_assert(eq(ev.join.room, ev.join.room_len, "lobby"));
    sio_event_dispose(&ev);
    ev = event("[\"send_message\",\"hi\"]", SIO_EV_SEND_MESSAGE);
    ck_assert(eq(ev.message, ev.message_len, "hi"));
    sio_event_dispose(&ev);
    ev = event("[\"send_message\",{\"message\":\"\"}]", SIO_EV_SEND_MESSAGE); /* its content is chat_send_message's */
    ck_assert(ev.message != NULL && ev.message_len == 0);
    sio_event_dispose(&ev);
    ev = event("[\"leave\"]", SIO_EV_LEAVE);
    sio_event_dispose(&ev);
    ev = event("[\"leave\",1,2,3]", SIO_EV_LEAVE);
    sio_event_dispose(&ev);

    event_refused("", "invalid_event");
    event_refused("{\"join\":1}", "invalid_event");
    event_refused("[]", "invalid_event");
    event_refused("[1]", "invalid_event");
    event_refused("[\"leave\"] x", "invalid_event");
    event_refused("[\"nope\"]", "unknown_event");
    event_refused("[\"leave\\u0000\"]", "invalid_event");
    event_refused("[\"join\"]", "invalid_username");
    event_refused("[\"join\",{\"name\":\"a\"}]", "invalid_username");
    event_refused("[\"join\",{\"username\":\"a\",\"room\":[]}]", "invalid_username");
    event_refused("[\"join\",\"a\\u0007\"]", "invalid_username");
    event_refused("[\"join\",{\"username\":\"a\",\"room\":\"r/1\"}]", "invalid_room");
    event_refused("[\"send_message\"]", "invalid_message");
    event_refused("[\"send_message\",{\"text\":\"a\"}]", "invalid_message");
}
END_TEST

static Suite *wsmsg_suite(void)
{
    Suite *s = suite_create("wsmsg");
    TCase *tc = tcase_create("wsmsg");
    tcase_add_test(tc, usernames);
    tcase_add_test(tc, native_kinds);
    tcase_add_test(tc, native_default_room);
    tcase_add_test(tc, native_errors);
    tcase_add_test(tc, sio_engineio);
    tcase_add_test(tc, sio_socketio);
    tcase_add_test(tc, sio_ack_id_bound);
    tcase_add_test(tc, sio_namespace_echo);
    tcase_add_test(tc, sio_auth);
    tcase_add_test(tc, sio_events);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(wsmsg_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
