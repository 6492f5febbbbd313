"""A Dapr quickstart-style app (state management + pub/sub), unchanged Dapr SDK code.

Run it beside pylotto exactly as with `dapr run`:

    pylotto run --app-id order-processor --resources-path examples/dapr/components \
        -- python examples/dapr/order_processor.py
"""

import json
import logging

from dapr.clients import DaprClient

logging.basicConfig(level=logging.INFO)

DAPR_STORE_NAME = "statestore"
PUBSUB_NAME = "orderpubsub"
TOPIC_NAME = "orders"

with DaprClient() as client:
    subscription = client.subscribe(pubsub_name=PUBSUB_NAME, topic=TOPIC_NAME)
    for order_id in range(1, 4):
        order = {"orderId": order_id}
        # State: save, read back, delete
        client.save_state(DAPR_STORE_NAME, str(order_id), json.dumps(order))
        result = client.get_state(DAPR_STORE_NAME, str(order_id))
        logging.info("Result after get: %s", result.data.decode())
        client.delete_state(store_name=DAPR_STORE_NAME, key=str(order_id))
        logging.info("Deleted order: %s", order_id)
        # Pub/sub: publish, receive on the streaming subscription
        client.publish_event(pubsub_name=PUBSUB_NAME, topic_name=TOPIC_NAME,
                             data=json.dumps(order), data_content_type="application/json")
        message = subscription.next_message()
        logging.info("Subscriber received: %s", message.data())
        subscription.respond_success(message)
    subscription.close()
print("order-processor done")
