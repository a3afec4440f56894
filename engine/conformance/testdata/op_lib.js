export function greet(word) {
  return `hello-${word}`;
}
