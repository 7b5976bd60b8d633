/* cf_proto: the frame-level protocol between clients, the broker and workers over ZeroMQ
 * (written down in schemas/protocol.md). Majordomo-style (ZeroMQ RFC 7/18) with credit.
 *
 * client DEALER -> broker ROUTER   ["CFC1", job]
 * broker -> client                 ["CFC1", reply]
 * worker DEALER -> broker ROUTER   ["CFW1", READY, {name, services, credit}]
 *                                  ["CFW1", REPLY, job id, client route, reply]
 *                                  ["CFW1", HEARTBEAT]   ["CFW1", DISCONNECT]
 * broker -> worker                 ["CFW1", REQUEST, job id, client route, job]
 *                                  ["CFW1", HEARTBEAT]   ["CFW1", DISCONNECT] */
#ifndef CF_PROTO_H
#define CF_PROTO_H

#define CF_PROTO_CLIENT "CFC1"
#define CF_PROTO_WORKER "CFW1"

enum {
    CF_PROTO_READY = 1,      /* worker announces its services and credit */
    CF_PROTO_REQUEST = 2,    /* broker hands a job to a worker */
    CF_PROTO_REPLY = 3,      /* worker answers a job; returns one credit */
    CF_PROTO_HEARTBEAT = 4,  /* either way, when nothing else was sent for a heartbeat */
    CF_PROTO_DISCONNECT = 5, /* either way: forget me / reconnect and announce again */
};

/* Defaults of the [broker] settings, shared so that all sides agree. */
#define CF_PROTO_ENDPOINT_DEFAULT "tcp://127.0.0.1:5555"
#define CF_PROTO_HEARTBEAT_MS     1000
#define CF_PROTO_LIVENESS         3
#define CF_PROTO_MAX_FRAMES       8

#endif
