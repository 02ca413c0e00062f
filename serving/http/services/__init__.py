"""What the routes call: forecasts, sizing, priorities, the model and series caches, sync runs."""
