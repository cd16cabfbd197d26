"""The quiz split carved from a training set: disjoint parts that make up the whole, seeded, the
same split as the tables' --quiz-fraction, and never from val or test."""

import pytest
from mmengine.config import Config

from rlkd_mm.apis.runs import split_quiz
from rlkd_mm.datasets import QuizSplitDataset, quiz_split


def test_quiz_split_parts_are_disjoint_seeded_and_complete():
    train, quiz = quiz_split(range(100), 0.1, seed=3)
    assert len(quiz) == 10 and len(train) == 90
    assert sorted(train + quiz) == list(range(100)) and train == sorted(train)
    assert quiz_split(range(100), 0.1, seed=3) == (train, quiz)
    assert quiz_split(range(100), 0.1, seed=4)[1] != quiz
    assert len(quiz_split(range(5), 0.01)[1]) == 2  # at least two (the quiz halves)
    with pytest.raises(ValueError, match='in \\(0, 1\\), got 1.5'):
        quiz_split(range(10), 1.5)
    with pytest.raises(ValueError, match='leaves none of the 2'):
        quiz_split(range(2), 0.5)


def test_dataset_parts_match_the_tables_quiz_split():
    cfg = Config.fromfile('configs/digits/cls_kd_rlkd_base_fixed.py')
    train_cfg = cfg.train_dataloader.dataset
    quiz_cfg = cfg.quiz_dataset
    for ds_cfg in (train_cfg, quiz_cfg):
        ds_cfg.dataset.indices = 200
    train, quiz = QuizSplitDataset(**_args(train_cfg)), QuizSplitDataset(**_args(quiz_cfg))
    assert len(train) == 180 and len(quiz) == 20
    assert not set(train.indices) & set(quiz.indices)
    assert train.metainfo == train.dataset.metainfo
    item = quiz[0]
    assert (
        int(item['data_samples'].gt_label)
        == quiz.dataset.get_data_info(quiz.indices[0])['gt_label']
    )
    # the rows of a table trained with --quiz-fraction 0.1 see the same training images
    fixed = Config.fromfile('configs/digits/cls_kd_fixed.py')
    fixed.train_dataloader.dataset.indices = 200
    assert split_quiz(fixed, 0.1, 0) == (train.indices, quiz.indices)


def test_val_and_test_are_refused():
    with pytest.raises(ValueError, match="training source, got split='val'"):
        QuizSplitDataset(dataset=dict(type='rlkd_mm.DigitsDataset', split='val'), part='quiz')
    with pytest.raises(ValueError, match="part must be 'train' or 'quiz'"):
        QuizSplitDataset(dataset=dict(type='rlkd_mm.DigitsDataset'), part='val')


def _args(cfg):
    cfg = cfg.copy()
    cfg.pop('type')
    return cfg
