-- The application's event store lives in its own database beside Temporal's.
CREATE DATABASE escalations OWNER temporal;
