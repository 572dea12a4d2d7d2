"""The commands: depth_interp demo / bag / bench / train / export / eval, replay and recorder."""
