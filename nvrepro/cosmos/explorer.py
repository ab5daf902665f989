"""The clip viewer: step through generated clips, see the frames, the question, the model's reasoning and
answer, and how the reward rules score it.

:func:`describe_item` does the work (plain text, testable); :func:`clip_viewer` wraps it and
:func:`~nvrepro.cosmos.figures.show_clips` in ipywidgets controls (a task, an index, the stage's model).
"""

from __future__ import annotations

from typing import Mapping

from nvrepro.cosmos.rewards import format_reward, parse_answer


def describe_item(dataset, index: int, response: str | None = None) -> str:
    """Lines for item ``index`` of ``dataset`` (a :class:`~nvrepro.cosmos.data.ClipQA`): task and ontology
    tag, the question with its options, the reference response, and, given a model's ``response``, its
    parsed answer and the two rewards."""
    from nvrepro.cosmos.tasks import TASKS

    example, _ = dataset[index]
    q = example.question
    lines = [f"item {index}: {q.task} ({TASKS[q.task].tag}; chance {TASKS[q.task].chance:.0%})", q.prompt,
             f"reference: {q.response}"]
    if response is not None:
        answer = parse_answer(response)
        lines += [f"model:     {response}",
                  f"answer {answer or '(none)'} vs {q.answer}: accuracy reward {float(answer == q.answer):g}, "
                  f"format reward {format_reward(response):g}"]
    return "\n".join(lines)


def clip_viewer(dataset, models: Mapping[str, object] | None = None, max_new_tokens: int = 96) -> object:
    """An ipywidgets box: an index slider (and a stage picker when ``models`` maps stage names to trained
    models) over ``dataset``; shows the clip's frames and :func:`describe_item` with the chosen model's
    greedy response."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    from nvrepro.cosmos.evaluation import answer_questions
    from nvrepro.cosmos.figures import show_clips

    models = dict(models or {})
    index = widgets.IntSlider(value=0, min=0, max=len(dataset) - 1, description="clip")
    stage = widgets.Dropdown(options=list(models) or ["(no model)"], description="model")
    out = widgets.Output()
    answers: dict[tuple[str, int], str] = {}

    def draw(*_):
        i, name = index.value, stage.value
        response = None
        if name in models:
            if (name, i) not in answers:
                answers[(name, i)] = answer_questions(models[name], dataset, indices=[i],
                                                      max_new_tokens=max_new_tokens)[0]["response"]
            response = answers[(name, i)]
        example, frames = dataset[i]
        with out:
            out.clear_output(wait=True)
            fig = show_clips([(frames.permute(0, 2, 3, 1).numpy(), f"{example.question.task}, item {i}")])
            plt.show(fig)
            print(describe_item(dataset, i, response))

    index.observe(draw, names="value")
    stage.observe(draw, names="value")
    draw()
    box = widgets.VBox([widgets.HBox([index, stage]), out])
    display(box)
    return box
