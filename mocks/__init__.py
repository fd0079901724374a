"""The simulated world: brokers, market feeds and networks that script production failures.

Mocks speak the brokers' wire protocols as the brokers document them and import nothing
from ``system`` (sharing the client's code would make the mock share the client's bugs).
"""
