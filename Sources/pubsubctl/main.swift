print("pubsubctl")
