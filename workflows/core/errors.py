"""Domain refusals. Every refusal names the rule that refused it."""


class DomainError(Exception):
    """A command was refused; nothing was written.

    ``rule`` is a stable dotted name (``acknowledge.not_open``,
    ``permission.sign_off``) that callers and tests can match on.
    """

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f'rule "{rule}": {message}')
        self.rule = rule
        self.message = message
