from pylotto.client import Client

with Client() as client:  # 127.0.0.1:34904, or $PYLOTTO_GRPC_ADDRESS
    print(client.say_hello("quick_start_demo", "world"))
    client.save_state("in-memory", "greeting", b"hello")
    print(client.get_state("in-memory", "greeting").value)
    print(client.get_next_id("in-memory", "order-id"))
    client.publish_event("in-memory", "hello", {"msg": "hi"})
