// The Publisher lives here.
