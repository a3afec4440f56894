// Imports k6/x/cdeload without using it: the banner names the target.
import cde from 'k6/x/cdeload';

export default function () {}
