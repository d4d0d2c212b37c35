/* notify.h — telling a service manager (systemd's Type=notify) what the
 * process is doing, with the datagram protocol of sd_notify(3): READY=1,
 * RELOADING=1 with MONOTONIC_USEC, STOPPING=1, STATUS=..., WATCHDOG=1.
 * Without NOTIFY_SOCKET in the environment every call does nothing. */
#ifndef TCPLB_NOTIFY_H
#define TCPLB_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

/* The manager's socket, from NOTIFY_SOCKET: a path, or "@name" for an
 * abstract one. 0 without NOTIFY_SOCKET, 1 when set up, -1 (err filled)
 * when NOTIFY_SOCKET is there but unusable. Main thread, once, before
 * privileges are dropped. */
int notify_open(char *err, size_t errlen);
void notify_close(void);
int notify_enabled(void);

/* Sends one datagram of newline-separated NAME=VALUE lines, as given.
 * Failures are logged once and otherwise ignored: the manager is told,
 * it is never waited for. */
void notify_send(const char *message);

/* Each message of the protocol (STATUS text is cut at 200 bytes). */
void notify_ready(const char *status);
void notify_reloading(void);
void notify_stopping(const char *status);
void notify_status(const char *status);
void notify_watchdog(void);

/* The watchdog interval the manager asked for (WATCHDOG_USEC, for this
 * process when WATCHDOG_PID is set), in microseconds; 0 when none. */
uint64_t notify_watchdog_usec(void);

/* What notify_open() parses, exposed for the unit tests: NOTIFY_SOCKET's
 * value into a sockaddr_un (returns its length, 0 when invalid);
 * WATCHDOG_USEC and WATCHDOG_PID's values into an interval (0 when none or
 * not for pid). */
struct sockaddr_un;
size_t notify_parse_address(const char *value, struct sockaddr_un *out);
uint64_t notify_parse_watchdog(const char *usec, const char *pid, long self);

#endif
