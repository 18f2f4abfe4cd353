print("pubsub-bench")
