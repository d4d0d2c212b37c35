/* client_key.h — a client's IP as the key that persistence, `show clients`,
 * `which` and source hashing share: 4 bytes for IPv4 (an IPv4-mapped IPv6
 * address is its IPv4 client), 16 for IPv6. The one place that turns socket
 * addresses and text into keys and back. A leaf module. */
#ifndef TCPLB_CLIENT_KEY_H
#define TCPLB_CLIENT_KEY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct client_key {
    uint8_t len;                /* 4 (IPv4), 16 (IPv6), 0 = unknown */
    uint8_t bytes[16];
};

/* The key of sa's IP address; len 0 for NULL or a non-IP family. */
void client_key_from_addr(const struct sockaddr *sa, struct client_key *k);

/* A socket address (port 0) holding the key's IP, for code that wants one.
 * Returns its length, 0 when the key is unknown. */
socklen_t client_key_to_addr(const struct client_key *k, struct sockaddr_storage *ss);

/* Writes the IP as text ("" when unknown). Returns buf. */
const char *client_key_str(const struct client_key *k, char *buf, size_t len);

/* Parses an IPv4 or IPv6 address. 0/-1. */
int client_key_parse(const char *text, struct client_key *k);

/* 1 when both keys hold the same IP. */
int client_key_equal(const struct client_key *a, const struct client_key *b);

/* The key's hash (hash.h) with <salt>; callers with an unknown key choose
 * their own fallback. */
uint64_t client_key_hash(const struct client_key *k, uint64_t salt);

#endif
