"""Train a multilayer perceptron (784 -> 256 ReLU -> 10) on MNIST with Gluon.

This is an ordinary MXNet 1.x Gluon script; it runs on mxcore because of its
first import line and nothing else.

    python examples/mnist_mlp.py [--epochs 10] [--batch-size 64] [--lr 0.1]
"""
import argparse
import os
import time

import mxcore as mx

parser = argparse.ArgumentParser(description="MNIST MLP with Gluon")
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--num-examples", type=int, default=None,
                    help="train on the first N images only")
parser.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "..", "data", "mnist"))
args = parser.parse_args()

gluon, autograd, nn = mx.gluon, mx.autograd, mx.gluon.nn
ctx = mx.gpu(0) if mx.context.num_gpus() > 0 else mx.cpu()  # the usual MXNet idiom
mx.random.seed(42)

transformer = gluon.data.vision.transforms.Compose([
    gluon.data.vision.transforms.ToTensor(),
    gluon.data.vision.transforms.Normalize(0.13, 0.31)])
train_set = gluon.data.vision.MNIST(root=args.data, train=True)
if args.num_examples:
    train_set = train_set.take(args.num_examples)
train_data = gluon.data.DataLoader(train_set.transform_first(transformer),
                                   batch_size=args.batch_size, shuffle=True)
test_data = gluon.data.DataLoader(
    gluon.data.vision.MNIST(root=args.data, train=False).transform_first(transformer),
    batch_size=1000)

net = nn.Sequential()
with net.name_scope():
    net.add(nn.Dense(256, activation="relu"))
    net.add(nn.Dense(10))
net.initialize(mx.init.Xavier(magnitude=2.24), ctx=ctx)

softmax_cross_entropy = gluon.loss.SoftmaxCrossEntropyLoss()
trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": args.lr})


def evaluate(data_iter):
    metric = mx.metric.Accuracy()
    for data, label in data_iter:
        output = net(data.as_in_context(ctx))
        metric.update([label.as_in_context(ctx)], [output])
    return metric.get()[1]


for epoch in range(args.epochs):
    tic = time.time()
    train_metric = mx.metric.Accuracy()
    cumulative_loss = 0.0
    num_samples = 0
    for data, label in train_data:
        data = data.as_in_context(ctx)
        label = label.as_in_context(ctx)
        with autograd.record():
            output = net(data)
            loss = softmax_cross_entropy(output, label)
        loss.backward()
        trainer.step(data.shape[0])
        cumulative_loss += mx.nd.sum(loss).asscalar()
        num_samples += data.shape[0]
        train_metric.update([label], [output])
    test_acc = evaluate(test_data)
    print("Epoch %d. Loss: %.4f, Train acc %.4f, Test acc %.4f, Time %.1f sec" % (
        epoch, cumulative_loss / num_samples, train_metric.get()[1], test_acc,
        time.time() - tic))

net.save_parameters("mnist_mlp.params")
