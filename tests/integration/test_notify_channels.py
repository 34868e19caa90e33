"""AppriseSender against real receivers: an SMTP server (aiosmtpd) and an HTTP webhook server,
both started by the tests. Chinese and English survive, the notification id travels in a
header and a JSON field, and a receiver that is down or refuses gives a NotificationError
without the URL's secrets."""

from __future__ import annotations

import pytest

from connectors.notify import BODY_FIELD, HEADER, AppriseSender
from safety_hub.errors import NotificationError
from safety_hub.notify.contacts import ContactPoint, OutgoingMessage
from tests.fixtures import SmtpReceiver, WebhookReceiver

TITLE = "【二级预警】e01 液氯储罐区 Cl2 high-high GT-1101"
BODY = "1#液氯储罐A路氯气检测器 0.82 ppm ≥ 0.6 ppm (L2). 请立即处置 / act now."


def message(contact: ContactPoint, nid: str = "ntf-0001") -> OutgoingMessage:
    return OutgoingMessage(notification_id=nid, contact=contact, title=TITLE, body=BODY)


def sender() -> AppriseSender:
    return AppriseSender(connect_timeout_s=2, read_timeout_s=5)


def test_an_email_reaches_the_smtp_server_with_chinese_and_english(
    smtp_receiver: SmtpReceiver,
) -> None:
    url = smtp_receiver.url("wang.jianguo@e01.example.com") + "&cc=duty@park.example.com"
    sender().send(message(ContactPoint("email", url), "ntf-mail-7"))
    mail = smtp_receiver.wait_for(1)[0]
    assert mail.mail_from == "safety-hub@example.com"
    assert set(mail.rcpt_tos) == {"wang.jianguo@e01.example.com", "duty@park.example.com"}
    assert mail.message["Subject"] == TITLE
    assert mail.message[HEADER] == "ntf-mail-7"
    assert mail.message.get_content_type() == "text/plain"
    assert BODY in mail.text()


def test_a_json_webhook_gets_title_body_and_the_notification_id(
    webhook_receiver: WebhookReceiver,
) -> None:
    contact = ContactPoint("webhook", webhook_receiver.url("/hooks/duty?:source=safety-hub"))
    sender().send(message(contact, "ntf-hook-42"))
    request = webhook_receiver.wait_for(1)[0]
    assert request.method == "POST"
    assert request.path == "/hooks/duty"
    assert request.header(HEADER) == "ntf-hook-42"
    body = request.json()
    assert body["title"] == TITLE
    assert body["message"] == BODY
    assert body[BODY_FIELD] == "ntf-hook-42"
    assert body["source"] == "safety-hub"
    assert body["type"] == "warning"


def test_an_sms_gateway_is_a_form_webhook(webhook_receiver: WebhookReceiver) -> None:
    contact = ContactPoint("sms", webhook_receiver.url("/sms/send?:phone=13800000001", "form"))
    sender().send(message(contact, "ntf-sms-1"))
    request = webhook_receiver.wait_for(1)[0]
    assert request.header(HEADER) == "ntf-sms-1"
    form = request.body.decode()
    assert "phone=13800000001" in form
    assert "%E6%B6%B2%E6%B0%AF" in form  # 液氯, URL-encoded UTF-8


def test_a_stopped_receiver_is_a_retryable_error_without_secrets(
    webhook_receiver: WebhookReceiver, smtp_receiver: SmtpReceiver
) -> None:
    webhook_receiver.stop()
    url = f"json://hookuser:pa55-s3cret@127.0.0.1:{webhook_receiver.port}/hooks/TOKEN-abcdef123"
    with pytest.raises(NotificationError) as info:
        sender().send(message(ContactPoint("webhook", url)))
    error = info.value
    assert error.retryable
    assert error.channel == "webhook"
    assert error.target == "json://127.0.0.1/***"
    text = str(error)
    assert "Connection error" in text or "connection" in text.lower(), text
    for secret in ("pa55-s3cret", "TOKEN-abcdef123", "hookuser"):
        assert secret not in text

    smtp_receiver.stop()
    mail_url = f"mailto://mailer:m4il-s3cret@127.0.0.1:{smtp_receiver.port}?from=hub@example.com&to=a@example.com"
    with pytest.raises(NotificationError) as info:
        sender().send(message(ContactPoint("email", mail_url)))
    assert info.value.retryable
    assert "m4il-s3cret" not in str(info.value)


def test_the_receiver_back_on_the_same_port_takes_the_retry(
    webhook_receiver: WebhookReceiver,
) -> None:
    contact = ContactPoint("webhook", webhook_receiver.url("/hooks/duty"))
    webhook_receiver.stop()
    with pytest.raises(NotificationError):
        sender().send(message(contact, "ntf-retry"))
    webhook_receiver.start()
    sender().send(message(contact, "ntf-retry"))
    assert webhook_receiver.wait_for(1)[0].json()[BODY_FIELD] == "ntf-retry"


def test_refusals_tell_retryable_from_permanent(webhook_receiver: WebhookReceiver) -> None:
    contact = ContactPoint("webhook", webhook_receiver.url("/hooks/duty"))
    webhook_receiver.status = 503
    with pytest.raises(NotificationError) as info:
        sender().send(message(contact))
    assert info.value.retryable
    assert "503" in info.value.detail
    webhook_receiver.status = 400
    with pytest.raises(NotificationError) as info:
        sender().send(message(contact))
    assert not info.value.retryable
    assert "400" in info.value.detail
    with pytest.raises(NotificationError) as info:
        sender().send(message(ContactPoint("webhook", "nosuchscheme://s3cret-token")))
    assert not info.value.retryable
    assert "s3cret-token" not in str(info.value)


def test_the_smtp_receiver_restarts_on_the_same_port(smtp_receiver: SmtpReceiver) -> None:
    contact = ContactPoint("email", smtp_receiver.url("duty@park.example.com"))
    port = smtp_receiver.port
    smtp_receiver.stop()
    with pytest.raises(NotificationError) as info:
        sender().send(message(contact, "ntf-mail-retry"))
    assert info.value.retryable
    smtp_receiver.start()
    assert smtp_receiver.port == port
    sender().send(message(contact, "ntf-mail-retry"))
    assert smtp_receiver.wait_for(1)[0].message[HEADER] == "ntf-mail-retry"
