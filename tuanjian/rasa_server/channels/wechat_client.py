"""The client for WeChat's API that sends customer-service messages: the
channel's replies after the 5-second window, and the help desk's replies."""
from typing import Any

from wechatpy import WeChatClient

from tuanjian import settings


class CustomerServiceClient(WeChatClient):
    """wechatpy's client, with the token URL under API_BASE_URL as well
    (wechatpy hard-codes api.weixin.qq.com there), so that one base URL
    points the whole client at a proxy or a test server."""

    def __init__(self, app_id: str, secret: str, api_base_url: str | None = None) -> None:
        super().__init__(app_id, secret, timeout=10)
        if api_base_url:
            self.API_BASE_URL = api_base_url

    def fetch_access_token(self) -> dict[str, Any]:
        return self._fetch_access_token(
            url=self.API_BASE_URL + "token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


def customer_service_client(app_id: str | None, app_secret: str | None,
                            api_base_url: str | None = None) -> CustomerServiceClient | None:
    """A client, or None when the Official Account's id or secret is not set."""
    if not (app_id and app_secret):
        return None
    return CustomerServiceClient(app_id, app_secret, api_base_url)


# credentials.yml keys that became one setting: TUANJIAN_WECHAT_API_BASE_URL.
MOVED_KEYS = ("api_base_url", "wechat_api_base_url")


def refuse_moved_keys(credentials: dict[str, Any]) -> None:
    """A credentials.yml that still names WeChat's address stops the server
    rather than silently talking to api.weixin.qq.com."""
    moved = [key for key in MOVED_KEYS if key in credentials]
    if moved:
        raise ValueError(f"credentials.yml: {', '.join(moved)} moved to the environment "
                         f"variable {settings.WECHAT_API_BASE_URL}")
