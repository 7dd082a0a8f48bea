"""sdpose-app runtime: sources, detector, pose engine, tracker, exporters, drawing and GUI."""
