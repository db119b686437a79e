"""Robot recordings (rosbag2) -> LeRobot datasets -> training samples."""
