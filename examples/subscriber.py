"""An app receiving pub/sub events through the callback server.

    python examples/subscriber.py &                      # the app, AppCallback on :9999
    pylotto run --app-id subscriber --app-grpc-port 9999 &
    python examples/quickstart.py                        # publishes {"msg": "hi"} on "hello"
"""

from pylotto.client import App, EventStatus, TopicEvent

app = App()


@app.subscribe(pubsub="in-memory", topic="hello")
async def on_hello(event: TopicEvent) -> EventStatus | None:
    print(f"received {event.json()} (event {event.id} from {event.source})", flush=True)
    return None  # None or EventStatus.SUCCESS acks; RETRY redelivers later; DROP discards


if __name__ == "__main__":
    app.run(port=9999)
