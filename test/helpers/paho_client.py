#!/usr/bin/python3
"""A paho-mqtt 1.6.1 client (Debian's python3-paho-mqtt) driven by test/broker/paho.test.ts.

usage: paho_client.py '<json>' with
  port, version (4 or 5), client_id, clean (bool), session_expiry (v5, seconds),
  subscribe: [[filter, qos], ...], publish: [[topic, payload, qos], ...],
  expect: messages to wait for, timeout: seconds, disconnect: send DISCONNECT at the end (default true)

Prints one JSON line per event on stdout: connected, subscribed, published, message, error, done.
Exits 0 when everything asked for happened within the timeout, 1 otherwise.
"""
import json
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def emit(event, **fields):
    fields["event"] = event
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def main():
    args = json.loads(sys.argv[1])
    v5 = args.get("version", 4) == 5
    timeout = float(args.get("timeout", 10))
    subscribe = args.get("subscribe", [])
    publish = args.get("publish", [])
    expect = int(args.get("expect", 0))

    connected = threading.Event()
    subscribed = threading.Event()
    all_published = threading.Event()
    enough = threading.Event()
    pending_subs = set()
    pending_pubs = set()
    received = []
    lock = threading.Lock()

    if v5:
        client = mqtt.Client(client_id=args["client_id"], protocol=mqtt.MQTTv5)
    else:
        client = mqtt.Client(client_id=args["client_id"], clean_session=args.get("clean", True), protocol=mqtt.MQTTv311)

    def on_connect(c, userdata, flags, rc, properties=None):
        code = rc.value if hasattr(rc, "value") else rc
        emit("connected", rc=code, session_present=bool(flags.get("session present", 0)))
        if code == 0:
            connected.set()

    def on_subscribe(c, userdata, mid, granted, properties=None):
        codes = [g.value if hasattr(g, "value") else g for g in granted]
        emit("subscribed", granted=codes)
        with lock:
            pending_subs.discard(mid)
            if not pending_subs:
                subscribed.set()

    def on_publish(c, userdata, mid):
        with lock:
            pending_pubs.discard(mid)
            if not pending_pubs:
                all_published.set()

    def on_message(c, userdata, msg):
        emit("message", topic=msg.topic, payload=msg.payload.decode("utf-8", "replace"), qos=msg.qos, retain=bool(msg.retain))
        with lock:
            received.append(msg.topic)
            if len(received) >= expect:
                enough.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_publish = on_publish
    client.on_message = on_message

    if v5:
        props = Properties(PacketTypes.CONNECT)
        if args.get("session_expiry") is not None:
            props.SessionExpiryInterval = int(args["session_expiry"])
        client.connect("127.0.0.1", args["port"], keepalive=30, clean_start=args.get("clean", True), properties=props)
    else:
        client.connect("127.0.0.1", args["port"], keepalive=30)
    client.loop_start()
    deadline = time.monotonic() + timeout
    ok = True

    def wait(event, what):
        if not event.wait(max(0.0, deadline - time.monotonic())):
            emit("error", message="timed out waiting for " + what)
            return False
        return True

    ok = wait(connected, "CONNACK")
    if ok and subscribe:
        with lock:
            for topic, qos in subscribe:
                _, mid = client.subscribe(topic, qos)
                pending_subs.add(mid)
        ok = wait(subscribed, "SUBACK")
    if ok and publish:
        with lock:
            for topic, payload, qos in publish:
                info = client.publish(topic, payload, qos)
                if qos > 0:
                    pending_pubs.add(info.mid)
            if not pending_pubs:
                all_published.set()
        ok = wait(all_published, "the acknowledgements of the publishes")
        if ok:
            emit("published", count=len(publish))
    if ok and expect > 0:
        ok = wait(enough, "%d message(s)" % expect)
    # Let a message that should not come show itself before the count is reported.
    time.sleep(float(args.get("linger", 0.2)))
    thread_alive = client._thread is not None and client._thread.is_alive()
    if args.get("disconnect", True):
        client.disconnect()
    client.loop_stop()
    with lock:
        emit("done", received=len(received), network_thread_alive=thread_alive)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
