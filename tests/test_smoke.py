from conftest import k8s, model


def test_dev_stack_renders_every_model(dev_run):
    for name in ("llama-3-1-8b", "mixtral-8x7b", "qwen2-5-14b"):
        assert k8s(dev_run, "Deployment", name)
        assert k8s(dev_run, "Service", name)


def test_scratch_project(project):
    run = project.run(models=[model(name="a"), model(name="b")])
    assert k8s(run, "Deployment", "b")["spec"]["replicas"] == 2
