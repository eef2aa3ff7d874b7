"""Errors a user can act on; stage entry points print them as one line."""


class UserError(Exception):
    """Bad input that the user can fix: the message says what was expected and what was found."""


class ParamsError(UserError):
    """A params.yaml value is missing, unknown, of the wrong type or out of range."""


class DataError(UserError):
    """An archive, image folder or artifact is missing, corrupt or of the wrong shape."""


class TrainingError(UserError):
    """Training cannot go on, for example because a loss became NaN or infinite."""


class GitError(UserError):
    """Git is missing, the folder is not a repository, or a ref names no commit."""


def one_line(error: BaseException | str) -> str:
    """A library's error message squeezed onto one line, to quote inside a UserError."""
    text = " ".join(str(error).split())
    return text or type(error).__name__
