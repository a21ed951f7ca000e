"""Delivery channels: webhooks back into workflow engines, and notifications to humans."""
