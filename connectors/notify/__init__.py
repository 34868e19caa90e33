"""Notification channels through apprise: email, DingTalk, WeCom, Feishu, JSON/form/XML
webhooks, an SMS gateway's HTTP webhook (``AppriseSender``, a ``ports.NotificationSender``)."""

from connectors.notify.apprise_sender import BODY_FIELD, HEADER, AppriseSender

__all__ = ["BODY_FIELD", "HEADER", "AppriseSender"]
