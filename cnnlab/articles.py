"""The tutorials CNN Lab grew from (`shared/seeds/` in the project), named by their titles.

The learner never sees their file numbers: a preset or the Learn page cites an article by its title.
"""

from __future__ import annotations

# Each article's number (its file name's prefix) and title.
TITLES: dict[str, str] = {
    "000": "How can this CNN be implemented practically?",
    "001": "Implementing a Convolutional Neural Network with Python",
    "002": "How do I set up a Convolutional Neural Network for image classification?",
    "003": "Applying CNNs in Practice: From Image Recognition to Deep Learning",
}


def cite(*numbers: str) -> str:
    """The articles numbered `numbers` as a learner reads them: 'the article "Title"', or 'the
    articles "One" and "Two"'."""
    titles = [f"“{TITLES[number]}”" for number in numbers]
    if len(titles) == 1:
        return f"the article {titles[0]}"
    return f"the articles {', '.join(titles[:-1])} and {titles[-1]}"
