"""One ACME order answered over DNS-01, with certbot's ``acme`` client (blocking: run in a thread).

The coordinator, not the agent's Caddy, runs this order: Debian's Caddy has no DNS provider
modules, and the TSIG secret then never leaves the coordinator. The result is a PEM chain and
key that agents load like an imported certificate.
"""

import contextlib
import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.jwa import ES256
from josepy.jwk import JWKEC

from coordinator.dns01.rfc2136 import Dns01Failure, Target

_RATE_LIMITED: Final = "urn:ietf:params:acme:error:rateLimited"
_RATE_LIMIT_PAUSE: Final = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class Issued:
    """What the CA signed, the certificate's new key, and the account key used (kept for the
    next order so the CA sees one account)."""

    certificate_chain: str
    private_key: str
    account_key: str


def _new_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _problem(exc: messages.Error, phase: str, code: str, retriable: bool) -> Dns01Failure:
    limited = exc.typ == _RATE_LIMITED
    return Dns01Failure(
        phase,
        "acme_rate_limited" if limited else code,
        f"the CA said: {exc.detail or exc.typ}",
        retriable or limited,
        {"problemType": exc.typ},
    )


def _validation_failure(exc: errors.ValidationError) -> Dns01Failure:
    for authzr in exc.failed_authzrs:
        for challb in authzr.body.challenges:
            if challb.error is not None:
                return Dns01Failure(
                    "challenge",
                    "dns01_challenge_failed",
                    f"{authzr.body.identifier.value}: {challb.error.detail or challb.error.typ}",
                    True,
                    {"problemType": challb.error.typ, "identifier": authzr.body.identifier.value},
                )
    return Dns01Failure("challenge", "dns01_challenge_failed", str(exc), True)


class _Order:
    def __init__(
        self, directory_url: str, ca_bundle: str | None, account_key_pem: str | None
    ) -> None:
        self.account_key_pem = account_key_pem or _new_key_pem()
        key = serialization.load_pem_private_key(self.account_key_pem.encode(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError("the ACME account key is not an EC key")
        self.jwk = JWKEC(key=key)
        self.net = client.ClientNetwork(
            self.jwk,
            alg=ES256,
            verify_ssl=ca_bundle or True,  # type: ignore[arg-type]
            user_agent="berth-dns01",
            timeout=30,
        )
        try:
            directory = client.ClientV2.get_directory(directory_url, self.net)
        except (requests.RequestException, ValueError) as exc:
            raise Dns01Failure(
                "ca",
                "acme_directory_unreachable",
                f"the ACME directory {directory_url} cannot be read: {exc}",
                True,
                {"directoryUrl": directory_url},
            ) from exc
        self.acme = client.ClientV2(directory, self.net)

    def register(self, email: str | None) -> None:
        registration = messages.NewRegistration.from_data(email=email, terms_of_service_agreed=True)
        try:
            _ = self.acme.new_account(registration)
        except errors.ConflictError as exc:
            # The key already has an account: sign with its URL from now on.
            self.net.account = messages.RegistrationResource(
                uri=exc.location, body=messages.Registration()
            )
        except messages.Error as exc:
            raise _problem(exc, "account", "acme_account_refused", False) from exc


def order(
    *,
    directory_url: str,
    ca_bundle: str | None,
    email: str | None,
    account_key_pem: str | None,
    names: list[str],
    target: Target,
    visible_within: float,
    deadline_seconds: float,
    on_step: Callable[[str], None] = lambda _: None,
) -> Issued:
    """Order ``names`` (a wildcard and its apex), answering every authorization over DNS-01.

    Raises ``Dns01Failure``; the TXT records published are withdrawn whatever happens.
    """
    target.check_authoritative()
    o = _Order(directory_url, ca_bundle, account_key_pem)
    o.register(email)
    key_pem = _new_key_pem()
    csr = crypto_util.make_csr(key_pem.encode(), names)
    try:
        orderr = o.acme.new_order(csr)
    except messages.Error as exc:
        raise _problem(exc, "order", "acme_order_refused", False) from exc
    published: dict[str, list[str]] = {}
    answers: list[
        tuple[messages.AuthorizationResource, messages.ChallengeBody, challenges.ChallengeResponse]
    ] = []
    try:
        for authzr in orderr.authorizations:
            if authzr.body.status == messages.STATUS_VALID:
                # Validated before: CAs reuse an account's valid authorizations (Let's Encrypt
                # for 30 days), so a renewal may have nothing left to prove for this name.
                continue
            identifier = authzr.body.identifier.value
            dns01 = [c for c in authzr.body.challenges if isinstance(c.chall, challenges.DNS01)]
            if not dns01:
                raise Dns01Failure(
                    "order",
                    "acme_dns01_not_offered",
                    f"the CA offers no dns-01 challenge for {identifier}",
                    False,
                )
            challb = dns01[0]
            chall = challb.chall
            if not isinstance(chall, challenges.DNS01):  # narrowed above; for the type checker
                continue
            name = chall.validation_domain_name(identifier.removeprefix("*."))
            published.setdefault(name, []).append(chall.validation(o.jwk))
            answers.append((authzr, challb, chall.response(o.jwk)))
        on_step("publishing")
        for name, values in published.items():
            target.publish(name, values)
        for name, values in published.items():
            target.wait_visible(name, values, visible_within)
        on_step("validating")
        for authzr, challb, response in answers:
            try:
                _ = o.acme.answer_challenge(challb, response)
            except messages.Error as exc:
                # A challenge the CA already counts as valid cannot be answered again (seen
                # with Pebble: "Cannot update challenge with status valid"); that is no failure.
                current, _ = o.acme.poll(authzr)
                if current.body.status != messages.STATUS_VALID:
                    raise _problem(exc, "challenge", "acme_challenge_refused", False) from exc
        # acme compares with a naive local time.
        now = datetime.datetime.now()  # noqa: DTZ005
        deadline = now + datetime.timedelta(seconds=deadline_seconds)
        try:
            done = o.acme.poll_and_finalize(orderr, deadline)
        except errors.ValidationError as exc:
            raise _validation_failure(exc) from exc
        except errors.TimeoutError as exc:
            raise Dns01Failure(
                "order", "acme_order_timeout", f"the CA did not finish in time: {exc}", True
            ) from exc
        except messages.Error as exc:
            raise _problem(exc, "order", "acme_finalize_refused", False) from exc
    except requests.RequestException as exc:
        raise Dns01Failure(
            "ca", "acme_ca_unreachable", f"the CA did not answer: {exc}", True
        ) from exc
    finally:
        for name, values in published.items():
            # A leftover TXT record is harmless; the failure that matters is the one raised.
            with contextlib.suppress(Dns01Failure):
                target.withdraw(name, values)
    return Issued(done.fullchain_pem, key_pem, o.account_key_pem)
