#!/usr/bin/env python3
"""Interop peer: Google's official Python client (google-cloud-pubsub) against the emulator.

    py_interop.py publish PROJECT TOPIC N      publishes N messages (binary data, attributes, some
                                                with ordering keys); prints one JSON line per
                                                message: {"messageId", "data" (base64),
                                                "attributes", "orderingKey"}
    py_interop.py receive PROJECT SUB N TIMEOUT streaming-pulls until N messages arrived (acking
                                                each), prints them as JSON lines in arrival order

PUBSUB_EMULATOR_HOST must be set: the client then talks to the emulator without credentials.
"""
import base64
import json
import sys
import threading

from google.cloud import pubsub_v1


def publish(project, topic, n):
    client = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True))
    path = client.topic_path(project, topic)
    futures = []
    for i in range(n):
        data = bytes((i * 13 + j) % 256 for j in range(1 + i % 50))
        attrs = {"index": str(i), "source": "python", "ünï": "✓"}
        key = f"py-key-{i % 3}" if i % 2 == 0 else ""
        futures.append((data, attrs, key, client.publish(path, data, ordering_key=key, **attrs)))
    for data, attrs, key, future in futures:
        print(json.dumps({"messageId": future.result(timeout=60), "data": base64.b64encode(data).decode(),
                          "attributes": attrs, "orderingKey": key}), flush=True)


def receive(project, sub, n, timeout):
    client = pubsub_v1.SubscriberClient()
    path = client.subscription_path(project, sub)
    lock = threading.Lock()
    got = []
    done = threading.Event()

    def callback(message):
        with lock:
            got.append({"messageId": message.message_id, "data": base64.b64encode(message.data).decode(),
                        "attributes": dict(message.attributes), "orderingKey": message.ordering_key})
            if len(got) >= n:
                done.set()
        message.ack()

    future = client.subscribe(path, callback=callback)
    done.wait(timeout)
    future.cancel()
    try:
        future.result(timeout=10)
    except Exception:
        pass
    with lock:
        for item in got:
            print(json.dumps(item), flush=True)
    sys.exit(0 if len(got) >= n else 3)


if __name__ == "__main__":
    if sys.argv[1] == "publish":
        publish(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        receive(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
