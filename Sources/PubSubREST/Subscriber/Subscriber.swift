// The Subscriber lives here.
