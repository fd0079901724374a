"""The system's Kiwoom REST client: the second broker behind ``BrokerClient``.

``KiwoomClient`` is the entry point; ``KiwoomSettings`` configures it
(``KiwoomSettings.from_env()`` reads ``SQUALL_KIWOOM_*``). ``KiwoomWire`` is Kiwoom's
dialect for the shared ``BrokerGateway`` (``api-id`` headers, ``return_code``/``return_msg``
bodies, ``cont-yn``/``next-key`` paging); ``kiwoom_token_issuer`` asks ``POST /oauth2/token``.
Errors are ``system.broker.errors``'s, as for KIS.
"""

from system.broker.kiwoom.client import KiwoomClient
from system.broker.kiwoom.oauth import kiwoom_token_issuer
from system.broker.kiwoom.settings import KiwoomSettings
from system.broker.kiwoom.wire import KiwoomWire

__all__ = ["KiwoomClient", "KiwoomSettings", "KiwoomWire", "kiwoom_token_issuer"]
